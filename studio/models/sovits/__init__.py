"""SoVITS v2 synthesizer: semantic tokens + phones + reference timbre → 32 kHz audio."""

from studio.models.sovits.checkpoint import load_sovits, save_sovits_official
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer

__all__ = ["SoVITSConfig", "SoVITSSynthesizer", "load_sovits", "save_sovits_official"]

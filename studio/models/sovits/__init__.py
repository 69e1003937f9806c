"""SoVITS (v1, v2, v2Pro, v2ProPlus) synthesizer: semantic tokens + phones + reference timbre → 32 kHz audio."""

from studio.models.sovits.checkpoint import detect_sovits_version, load_sovits, save_sovits_official
from studio.models.sovits.config import SoVITSConfig
from studio.models.sovits.synthesizer import SoVITSSynthesizer
from studio.models.sovits.versions import SoVITSVersion

__all__ = [
    "SoVITSConfig",
    "SoVITSSynthesizer",
    "SoVITSVersion",
    "detect_sovits_version",
    "load_sovits",
    "save_sovits_official",
]

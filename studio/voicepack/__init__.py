"""The shareable voice pack: a versioned zip of manifest, safetensors weights and reference audio.

``write_voicepack`` builds one atomically; ``open_voicepack`` validates, verifies and extracts one safely.
"""

from studio.voicepack.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    STAGES,
    SUPPORTED_VERSIONS,
    WEIGHT_KINDS,
    ConsentRecord,
    FileRef,
    ReferenceClip,
    VoiceManifest,
    WeightsInfo,
    sha256_file,
)
from studio.voicepack.reader import DEFAULT_LIMITS, ExtractLimits, VoicePack, open_voicepack
from studio.voicepack.writer import write_voicepack

__all__ = [
    "DEFAULT_LIMITS",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "STAGES",
    "SUPPORTED_VERSIONS",
    "WEIGHT_KINDS",
    "ConsentRecord",
    "ExtractLimits",
    "FileRef",
    "ReferenceClip",
    "VoiceManifest",
    "VoicePack",
    "WeightsInfo",
    "open_voicepack",
    "sha256_file",
    "write_voicepack",
]

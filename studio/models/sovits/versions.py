"""Which GPT-SoVITS release a SoVITS (s2) weight file belongs to, from its header, config and weights.

Upstream writes v1/v2 exports as plain torch zip archives (``PK``) but replaces those two bytes by a
version tag for the later releases (SPEC §9.4): ``05`` v2Pro, ``06`` v2ProPlus, ``02`` v3, ``03``/``04``
v3/v4 LoRA. Files that keep ``PK`` (pretrained generators, v1/v2 exports) are told apart by their keys:

* ``cfm.*`` / ``bridge.*`` / ``wns1.*`` — v3 or v4 (the CFM decoder; both have identical key sets, so the
  config's ``model.version`` is the only further hint);
* ``sv_emb.*`` — v2Pro or v2ProPlus; ProPlus has a first upsampling kernel of 20 instead of 16;
* otherwise v1 (a 322-row phone table) or v2.

This module only classifies; :mod:`studio.models.sovits.checkpoint` reads the files and refuses what we
cannot run with :func:`unsupported_error`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from studio.errors import CheckpointError

ZIP_MAGIC = b"PK"
SUPPORTED_VERSIONS = ("v1", "v2", "v2Pro", "v2ProPlus")
#: 2-byte tags upstream writes instead of "PK" -> version
HEADER_TAGS: dict[bytes, str] = {
    b"00": "v1",
    b"01": "v2",
    b"02": "v3",
    b"03": "v3 LoRA",
    b"04": "v4 LoRA",
    b"05": "v2Pro",
    b"06": "v2ProPlus",
}
#: the tag our official export writes for a version (v1/v2 keep the plain zip header, as upstream)
EXPORT_HEADERS: dict[str, bytes] = {"v2Pro": b"05", "v2ProPlus": b"06"}
V1_SYMBOLS = 322
PRO_PLUS_FIRST_KERNEL = 20  # dec.ups.0 kernel: 16 in v2Pro, 20 in v2ProPlus
CFM_PREFIXES = ("cfm.", "bridge.", "wns1.")
SV_PREFIX = "sv_emb."


@dataclass(frozen=True)
class SoVITSVersion:
    """The release a file belongs to and how we know it."""

    version: str  # "v1" | "v2" | "v2Pro" | "v2ProPlus" | "v3" | "v4" | "v3 (or v4)" | "v3 LoRA" | "v4 LoRA"
    source: str  # "header", "weights" or "config" (what decided it)
    header: bytes  # the first two bytes on disk

    @property
    def supported(self) -> bool:
        return self.version in SUPPORTED_VERSIONS

    @property
    def uses_speaker_verification(self) -> bool:
        return self.version in ("v2Pro", "v2ProPlus")

    def __str__(self) -> str:
        return self.version


def unsupported_error(path: str | Path, version: str) -> CheckpointError:
    """The plain refusal for a release SoVITS Studio cannot run."""
    return CheckpointError(
        f"{path} is a GPT-SoVITS {version} voice; SoVITS Studio runs {', '.join(SUPPORTED_VERSIONS[:-1])} and "
        f"{SUPPORTED_VERSIONS[-1]}; v3/v4 are not supported yet.",
        hint="Use a v1, v2, v2Pro or v2ProPlus SoVITS weight file (.pth).",
    )


def version_from_header(header: bytes) -> str | None:
    """The release a 2-byte tag names, or None for a plain zip (``PK``) or an unknown header."""
    return HEADER_TAGS.get(header)


def version_from_weights(weights: dict[str, torch.Tensor], hparams: dict[str, Any] | None = None) -> str:
    """Classify by key set and shapes (the config's ``model.version`` only separates look-alikes)."""
    stated = str(((hparams or {}).get("model") or {}).get("version") or (hparams or {}).get("version") or "")
    if any(k.startswith(CFM_PREFIXES) for k in weights):
        return stated if stated in ("v3", "v4") else "v3 (or v4)"
    if any(k.startswith(SV_PREFIX) for k in weights):
        first_up = weights.get("dec.ups.0.weight_v")
        if first_up is not None and first_up.dim() == 3:
            return "v2ProPlus" if first_up.shape[2] == PRO_PLUS_FIRST_KERNEL else "v2Pro"
        return stated if stated in ("v2Pro", "v2ProPlus") else "v2Pro"
    table = weights.get("enc_p.text_embedding.weight")
    return "v1" if table is not None and table.shape[0] == V1_SYMBOLS else "v2"


def classify(
    header: bytes, weights: dict[str, torch.Tensor] | None, hparams: dict[str, Any] | None = None
) -> SoVITSVersion:
    """One answer from the header tag (when it names a later release) or else the weights."""
    tagged = version_from_header(header)
    if tagged is not None and tagged not in ("v1", "v2"):
        return SoVITSVersion(tagged, "header", header)
    if weights is None:
        raise ValueError("a file with a plain zip header needs its weights to be classified")
    return SoVITSVersion(version_from_weights(weights, hparams), "weights", header)


def check_consistent(path: str | Path, found: SoVITSVersion, weights: dict[str, torch.Tensor]) -> None:
    """A header that promises a speaker-verification model must come with its weights (and vice versa)."""
    has_sv = any(k.startswith(SV_PREFIX) for k in weights)
    if found.uses_speaker_verification and not has_sv:
        raise CheckpointError(
            f"{path}: the header says {found.version}, but the file has no speaker-verification weights "
            f"({SV_PREFIX}*); it is mislabelled or damaged.",
            hint="Export the model again, or use the file GPT-SoVITS wrote.",
        )
    if has_sv and not found.uses_speaker_verification:
        raise CheckpointError(
            f"{path}: the header says {found.version}, but the weights are those of a v2Pro/v2ProPlus model; "
            "the file is mislabelled or damaged."
        )

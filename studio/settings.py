"""Where the studio keeps things and which device it runs on, resolved once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from studio.pretrained import default_pretrained_dir
from studio.workspace import default_workspace_root as default_workspace_dir


def default_device() -> str:
    """``cuda`` when an NVIDIA GPU is usable, else ``cpu`` (imports torch lazily)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class StudioSettings:
    workspace: Path = field(default_factory=default_workspace_dir)
    pretrained: Path = field(default_factory=default_pretrained_dir)
    device: str | None = None  # None → default_device() when first needed
    precision: str = "auto"  # inference precision: auto | fp32 | bf16 | int8 (Models & Settings)

    def resolved_device(self) -> str:
        return self.device or default_device()

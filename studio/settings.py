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

    def resolved_device(self) -> str:
        return self.device or default_device()


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 0–65535 (0 = any free port), with a message a person understands."""
    import argparse

    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port is a whole number like 9880, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port must be between 1 and 65535, got {port}")
    return port


def port_or_auto(text: str) -> int | None:
    """Like :func:`port_number`, and ``auto`` → ``None`` (pick a free port)."""
    return None if text.strip().lower() == "auto" else port_number(text)

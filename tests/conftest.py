"""Shared fixtures: where the golden files and test voices live."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def golden_dir() -> Path:
    """The directory of upstream-computed fixtures (``STUDIO_GOLDEN_DIR`` overrides the default)."""
    return Path(os.environ.get("STUDIO_GOLDEN_DIR", SHARED / "golden")).resolve()


def voices_dir() -> Path:
    return Path(os.environ.get("STUDIO_VOICES_DIR", SHARED / "voices")).resolve()


@pytest.fixture(scope="session")
def golden() -> Path:
    path = golden_dir()
    if not path.is_dir():
        pytest.fail(f"golden directory not found: {path} (set STUDIO_GOLDEN_DIR)")
    return path


@pytest.fixture(scope="session")
def voices() -> Path:
    path = voices_dir()
    if not path.is_dir():
        pytest.fail(f"voices directory not found: {path} (set STUDIO_VOICES_DIR)")
    return path


@pytest.fixture(scope="session")
def tiny_s1_ckpt(golden: Path) -> Path:
    """The tiny GPT checkpoint in the official WebUI export format."""
    return golden / "tiny_s1.ckpt"


@pytest.fixture(scope="session")
def tiny_s2_pth(golden: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SoVITS checkpoint, decompressed from its .xz next to the goldens."""
    import lzma

    plain = golden / "tiny_s2G.pth"
    if plain.is_file():
        return plain
    out = tmp_path_factory.mktemp("tiny_s2") / "tiny_s2G.pth"
    with lzma.open(golden / "tiny_s2G.pth.xz") as src, open(out, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return out

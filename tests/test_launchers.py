"""The Linux launcher works from a fresh checkout: first run installs into a new venv, later runs start at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = "launchers/SoVITS-Studio.sh"


def _fresh_checkout(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("studio", "launchers"):
        shutil.copytree(REPO_ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "webui.py"):
        shutil.copyfile(REPO_ROOT / name, dest / name)
    return dest


def _run(checkout: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout / LAUNCHER), "--help"], cwd=checkout, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="bash launcher")
def test_linux_launcher_installs_once_then_starts(tmp_path):
    checkout = _fresh_checkout(tmp_path / "SoVITS Studio")  # a space in the path, as users have
    env = {
        **os.environ,
        # offline and fast: reuse this interpreter's packages instead of downloading them
        "SOVITS_STUDIO_VENV_ARGS": "--system-site-packages --without-pip",
        "SOVITS_STUDIO_PIP_ARGS": "--no-deps --no-build-isolation --no-index -q",
        "SOVITS_STUDIO_SKIP_TORCH": "1",
    }
    first = _run(checkout, env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "First start" in first.stdout
    assert "--no-browser" in first.stdout  # webui.py's help: the studio itself was reached
    venv_python = checkout / ".venv" / "bin" / "python"
    assert venv_python.exists() and (checkout / ".venv" / ".sovits-studio-installed").is_file()
    probe = subprocess.run(
        [str(venv_python), "-c", "import studio, sys; print(studio.__file__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert str(checkout / "studio") in probe.stdout  # the venv runs this checkout's code

    second = _run(checkout, env)
    assert second.returncode == 0, second.stderr
    assert "First start" not in second.stdout  # no reinstall
    assert "--no-browser" in second.stdout

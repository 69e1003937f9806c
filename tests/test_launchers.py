"""The bash launchers work from a fresh checkout: first run installs into a new venv, later runs start at once.

The macOS `.command` is a bash 3.2-compatible script, so it runs here too; the Windows `.bat` is only checked for
what would break it on Windows (line endings, the files it starts).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BASH_LAUNCHERS = ["launchers/SoVITS-Studio.sh", "launchers/SoVITS-Studio.command"]


def _fresh_checkout(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("studio", "launchers"):
        shutil.copytree(REPO_ROOT / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "webui.py"):
        shutil.copyfile(REPO_ROOT / name, dest / name)
    return dest


def _own_packages_env(tmp_path: Path) -> dict[str, str]:
    """Build the launcher's venv from this test's own interpreter and packages (setuptools with bdist_wheel,
    pip, the studio's dependencies) instead of whatever the machine's base Python happens to have. They are
    added after the standard library (a ``sitecustomize`` calling ``site.addsitedir``), never in front of it."""
    import sysconfig

    paths = sysconfig.get_paths()
    hook = tmp_path / "own-packages"
    hook.mkdir(exist_ok=True)
    dirs = list(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    (hook / "sitecustomize.py").write_text(f"import site\nfor d in {dirs!r}:\n    site.addsitedir(d)\n")
    base = getattr(sys, "_base_executable", sys.executable)
    return {"SOVITS_STUDIO_PYTHON": base, "PYTHONPATH": str(hook)}


def _run(checkout: Path, launcher: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout / launcher), "--help"], cwd=checkout, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="bash launcher")
@pytest.mark.parametrize("launcher", BASH_LAUNCHERS)
def test_launcher_installs_once_then_starts(tmp_path, launcher):
    checkout = _fresh_checkout(tmp_path / "SoVITS Studio")  # a space in the path, as users have
    env = {
        **os.environ,
        # offline and fast: reuse this interpreter's packages instead of downloading them
        **_own_packages_env(tmp_path),
        "SOVITS_STUDIO_VENV_ARGS": "--without-pip",
        "SOVITS_STUDIO_PIP_ARGS": "--no-deps --no-build-isolation --no-index -q",
        "SOVITS_STUDIO_SKIP_TORCH": "1",
    }
    first = _run(checkout, launcher, env)
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
        env=env,
    )
    assert str(checkout / "studio") in probe.stdout  # the venv runs this checkout's code

    second = _run(checkout, launcher, env)
    assert second.returncode == 0, second.stderr
    assert "First start" not in second.stdout  # no reinstall
    assert "--no-browser" in second.stdout


def test_a_failed_first_install_is_retried_on_the_next_start(tmp_path):
    """pip failing (offline, disk full) must not leave a venv that later starts pretend is installed."""
    checkout = _fresh_checkout(tmp_path / "studio")
    env = {
        **os.environ,
        "SOVITS_STUDIO_VENV_ARGS": "--system-site-packages --without-pip",
        "SOVITS_STUDIO_PIP_ARGS": "--no-index --find-links /nonexistent -q --this-option-does-not-exist",
        "SOVITS_STUDIO_SKIP_TORCH": "1",
    }
    for launcher in BASH_LAUNCHERS:
        failed = subprocess.run(
            ["bash", str(checkout / launcher), "--help"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        assert failed.returncode != 0, launcher
        assert not (checkout / ".venv" / ".sovits-studio-installed").exists(), launcher


def test_an_unreachable_torch_index_is_tried_once_then_the_default_index(tmp_path):
    """A blocked download.pytorch.org must not stall the first start: one quick try, then the default index."""
    checkout = _fresh_checkout(tmp_path / "studio")
    stub = tmp_path / "stub" / "pip"
    stub.mkdir(parents=True)
    log = tmp_path / "pip-calls.txt"
    (stub / "__init__.py").write_text("")
    (stub / "__main__.py").write_text(  # records each call; an --index-url call fails as an unreachable index does
        "import sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
        "sys.exit(1 if '--index-url' in sys.argv else 0)\n"
    )
    env = {
        **os.environ,
        "SOVITS_STUDIO_PYTHON": getattr(sys, "_base_executable", sys.executable),
        "PYTHONPATH": str(stub.parent),
        "SOVITS_STUDIO_VENV_ARGS": "--without-pip",
        "SOVITS_STUDIO_TORCH_INDEX": "http://127.0.0.1:9/unreachable",
        "SOVITS_STUDIO_INSTALL_ONLY": "1",
        "PATH": os.pathsep.join(
            p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "nvidia-smi").exists()
        ),
    }
    done = subprocess.run(
        ["bash", str(checkout / "launchers/SoVITS-Studio.sh")], cwd=checkout, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    calls = log.read_text().splitlines()
    torch_calls = [c for c in calls if "torch==" in c]
    assert len(torch_calls) == 2, calls
    assert "--index-url http://127.0.0.1:9/unreachable" in torch_calls[0] and "--retries 0" in torch_calls[0]
    assert "--index-url" not in torch_calls[1]
    assert "cannot be reached" in done.stdout and "Traceback" not in done.stderr


def test_windows_launcher_keeps_crlf_and_starts_the_studio():
    bat = (REPO_ROOT / "launchers" / "SoVITS-Studio.bat").read_bytes()
    lines = bat.split(b"\r\n")
    assert all(b"\n" not in line for line in lines), "cmd.exe mis-parses labels and goto in LF-only .bat files"
    text = bat.decode("ascii")
    assert "webui.py" in text and "-m venv" in text and "pip install -e" in text
    assert ".sovits-studio-installed" in text  # the same first-run marker as the bash launchers
    attributes = (REPO_ROOT / ".gitattributes").read_text()
    assert "*.bat" in attributes and "eol=crlf" in attributes  # a checkout with autocrlf=false keeps CRLF


def test_desktop_entry_starts_the_linux_launcher_beside_it():
    entry = (REPO_ROOT / "launchers" / "SoVITS-Studio.desktop").read_text()
    fields = dict(line.split("=", 1) for line in entry.splitlines() if "=" in line and not line.startswith("#"))
    assert fields["Type"] == "Application" and fields["Terminal"] == "true"
    assert "SoVITS-Studio.sh" in fields["Exec"] and "%k" in fields["Exec"]
    for launcher in BASH_LAUNCHERS:
        assert os.access(REPO_ROOT / launcher, os.X_OK), f"{launcher} must be executable to double-click"

#!/usr/bin/env bash
# SoVITS Studio launcher (macOS, double-click in Finder): the same first-run install as the Linux launcher.
# macOS has no NVIDIA GPU, so PyTorch comes from PyPI (it includes Apple-GPU support).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SOVITS_STUDIO_VENV:-$HERE/.venv}"
if [ ! -f "$VENV/.sovits-studio-installed" ]; then
  echo "First start: installing SoVITS Studio into $VENV (this takes a few minutes, once)."
  PY="$(command -v python3.12 || command -v python3.11 || command -v python3.10 || command -v python3)"
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
    { echo "SoVITS Studio needs Python 3.10 or newer (python.org/downloads)."; read -r -p "Press Enter to close."; exit 1; }
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -e "$HERE"
  date > "$VENV/.sovits-studio-installed"
fi
export NO_PROXY="localhost,127.0.0.1,::1${NO_PROXY:+,$NO_PROXY}"
exec "$VENV/bin/python" "$HERE/webui.py" "$@"

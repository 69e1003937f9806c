#!/usr/bin/env bash
# SoVITS Studio launcher (macOS, double-click in Finder). First run: creates a virtual environment beside the
# project and installs it; later runs start the studio at once. Arguments go to webui.py.
# macOS has no NVIDIA GPU, so PyTorch comes from PyPI (its macOS wheels include Apple-GPU support).
# Knobs (as the Linux launcher): SOVITS_STUDIO_VENV, SOVITS_STUDIO_VENV_ARGS, SOVITS_STUDIO_PIP_ARGS,
# SOVITS_STUDIO_INSTALL_ONLY=1, SOVITS_STUDIO_PYTHON. Written for the bash 3.2 that macOS ships (no `readlink -f`).
set -euo pipefail
HERE="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SOVITS_STUDIO_VENV:-$HERE/.venv}"
MARKER="$VENV/.sovits-studio-installed"

fail() {
  echo "$1"
  read -r -p "Press Enter to close." || true
  exit 1
}

if [ ! -f "$MARKER" ]; then
  echo "First start: installing SoVITS Studio into $VENV (this takes a few minutes, once)."
  PY="${SOVITS_STUDIO_PYTHON:-}"
  [ -n "$PY" ] || for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
  [ -n "$PY" ] || fail "SoVITS Studio needs Python 3.10 or newer (https://www.python.org/downloads/)."
  # shellcheck disable=SC2086
  "$PY" -m venv ${SOVITS_STUDIO_VENV_ARGS:-} "$VENV" || fail "Could not create $VENV."
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install ${SOVITS_STUDIO_PIP_ARGS:-} -e "$HERE" ||
    fail "Installing SoVITS Studio failed (see above); double-click again to retry."
  date > "$MARKER"
fi
[ "${SOVITS_STUDIO_INSTALL_ONLY:-0}" = "1" ] && exit 0
export NO_PROXY="localhost,127.0.0.1,::1${NO_PROXY:+,$NO_PROXY}"
exec "$VENV/bin/python" "$HERE/webui.py" "$@"

#!/usr/bin/env bash
# SoVITS Studio launcher (Linux). First run: creates a virtual environment beside the project and installs it
# (CPU PyTorch when no NVIDIA GPU is found). Later runs start the studio at once. Arguments go to webui.py.
# Knobs: SOVITS_STUDIO_VENV (venv folder), SOVITS_STUDIO_VENV_ARGS (extra `python -m venv` args),
# SOVITS_STUDIO_PIP_ARGS (extra `pip install` args), SOVITS_STUDIO_SKIP_TORCH=1, SOVITS_STUDIO_INSTALL_ONLY=1,
# SOVITS_STUDIO_PYTHON (the Python to build the venv from), SOVITS_STUDIO_TORCH_INDEX (where CPU PyTorch comes
# from; when it cannot be reached, PyTorch comes from the default index instead).
set -euo pipefail
HERE="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
VENV="${SOVITS_STUDIO_VENV:-$HERE/.venv}"
TORCH_VERSION="${SOVITS_STUDIO_TORCH:-2.13.0}"
TORCH_INDEX="${SOVITS_STUDIO_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
MARKER="$VENV/.sovits-studio-installed"

find_python() {
  for candidate in python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "SoVITS Studio needs Python 3.10 or newer: install it (e.g. sudo apt install python3 python3-venv)." >&2
  return 1
}

if [ ! -f "$MARKER" ]; then
  echo "First start: installing SoVITS Studio into $VENV (this takes a few minutes, once)."
  PY="${SOVITS_STUDIO_PYTHON:-$(find_python)}"
  # shellcheck disable=SC2086
  "$PY" -m venv ${SOVITS_STUDIO_VENV_ARGS:-} "$VENV"
  VPY="$VENV/bin/python"
  if [ "${SOVITS_STUDIO_SKIP_TORCH:-0}" != "1" ] && ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "No NVIDIA GPU found: installing the CPU build of PyTorch $TORCH_VERSION."
    # one quick try at the CPU index (no 50 retries when it is blocked), then the default index
    # shellcheck disable=SC2086
    if ! "$VPY" -m pip install ${SOVITS_STUDIO_PIP_ARGS:-} --retries 0 --timeout 20 "torch==$TORCH_VERSION" \
        --index-url "$TORCH_INDEX" >/dev/null 2>&1; then
      echo "The PyTorch CPU index cannot be reached; installing PyTorch from the default package index."
      # shellcheck disable=SC2086
      "$VPY" -m pip install ${SOVITS_STUDIO_PIP_ARGS:-} "torch==$TORCH_VERSION"
    fi
  fi
  # shellcheck disable=SC2086
  "$VPY" -m pip install ${SOVITS_STUDIO_PIP_ARGS:-} -e "$HERE"
  date > "$MARKER"
fi
[ "${SOVITS_STUDIO_INSTALL_ONLY:-0}" = "1" ] && exit 0
export NO_PROXY="localhost,127.0.0.1,::1${NO_PROXY:+,$NO_PROXY}"
exec "$VENV/bin/python" "$HERE/webui.py" "$@"

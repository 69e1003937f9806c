"""Helpers for the v2Pro / v2ProPlus goldens (../shared/golden_v2pro, see its MANIFEST.md).

Shared by every v2Pro test (speaker verification, SoVITS v2Pro, …): one place that knows where the
folder is, how to read its tensors and parameters, and how to unpack its xz-compressed models. A
hidden twin set with other seeds and inputs exists, so tests read shapes and parameters from
``runs()`` and ``load_npz()`` instead of hard-coding them.

Use the ``golden_v2pro`` session fixture (conftest.py) or call ``require_golden_v2pro()``; both skip
with a reason when the folder is absent.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from golden_utils import load_json
from golden_utils import load_npz as _load_npz_cached

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "STUDIO_GOLDEN_V2PRO_DIR"

# MANIFEST §6 thresholds (relative L2 in float64)
TOL_EXACT = 1e-5  # fbanks, spectrograms, 32k → 16k resampling, SoVITS float outputs
TOL_RESAMPLE_22K = 1e-4  # ref_dbg_wav32k (non-integer-ratio resampling)
TOL_EMBEDDING = 1e-4  # sv*_out_emb (a 50-layer float32 network)
TOL_STAGE = 1e-3  # sv_dbg_* stage means

_lock = threading.RLock()
_unpacked: dict[str, Path] = {}


def golden_v2pro_dir() -> Path:
    """``$STUDIO_GOLDEN_V2PRO_DIR``, else ``../shared/golden_v2pro`` beside the repository."""
    default = REPO_ROOT.parent / "shared" / "golden_v2pro"
    return Path(os.environ.get(ENV_VAR, default)).resolve()


def have_golden_v2pro() -> bool:
    return (golden_v2pro_dir() / "golden_runs.json").is_file()


def require_golden_v2pro() -> Path:
    """The golden folder, or a pytest skip saying where it was looked for."""
    path = golden_v2pro_dir()
    if not (path / "golden_runs.json").is_file():
        pytest.skip(f"v2Pro goldens not found at {path} (set {ENV_VAR})")
    return path


def load_npz() -> dict[str, np.ndarray]:
    """Every tensor of golden_tensors.npz (read once per session)."""
    return _load_npz_cached(str(require_golden_v2pro() / "golden_tensors.npz"))


def tensor_index() -> dict[str, tuple[tuple[int, ...], str]]:
    """golden_tensors_index.tsv as {key: (shape, dtype)}."""
    lines = (require_golden_v2pro() / "golden_tensors_index.tsv").read_text(encoding="utf-8").splitlines()
    index = {}
    for line in lines[1:]:
        if line.strip():
            name, shape, dtype = line.split("\t")
            index[name] = (tuple(int(s) for s in shape.strip("[]").split(",") if s.strip()), dtype)
    return index


_runs_cache: dict[Path, dict] = {}


def runs() -> dict:
    """golden_runs.json (every call parameter, model facts, file checksums)."""
    path = require_golden_v2pro() / "golden_runs.json"
    with _lock:
        if path not in _runs_cache:
            _runs_cache[path] = load_json(path)
        return _runs_cache[path]


def decompressed(name: str, tmp_dir: Path) -> Path:
    """The plain file for ``name`` (``x.pth`` or ``x.pth.xz``), unpacked from its .xz into ``tmp_dir``.

    Cached per session (later calls return the first copy whatever ``tmp_dir`` they pass); an
    already-unpacked file next to the goldens is used as it is. The sha256 recorded in
    ``golden_runs.json: files`` is checked, so a damaged unpack fails loudly instead of as a
    numerical mismatch.
    """
    folder = require_golden_v2pro()
    xz_name = name if name.endswith(".xz") else f"{name}.xz"
    plain_name = xz_name[: -len(".xz")]
    with _lock:
        if xz_name in _unpacked and _unpacked[xz_name].is_file():
            return _unpacked[xz_name]
        plain = folder / plain_name
        if not plain.is_file():
            plain = Path(tmp_dir) / plain_name
            plain.parent.mkdir(parents=True, exist_ok=True)
            with lzma.open(folder / xz_name) as src, open(plain, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
        expected = runs().get("files", {}).get(xz_name, {}).get("raw_sha256")
        if expected:
            digest = _sha256(plain)
            assert digest == expected, f"{plain} sha256 {digest} != {expected} recorded in golden_runs.json"
        _unpacked[xz_name] = plain
        return plain


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()

"""Helpers for comparing our outputs with the upstream goldens (see ../shared/golden/MANIFEST.md §7)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

FLOAT_TOL = 1e-5  # relative L2; MANIFEST §7: real mistakes land at 1e-4, so never loosen this


def rel_l2(ours, gold) -> float:
    """‖ours − gold‖₂ / ‖gold‖₂ in float64, after checking shapes and finiteness."""
    a = np.asarray(_to_numpy(ours), dtype=np.float64)
    g = np.asarray(_to_numpy(gold), dtype=np.float64)
    assert a.shape == g.shape, f"shape {a.shape} != golden {g.shape}"
    assert np.isfinite(a).all(), "output has NaN/inf"
    denom = np.linalg.norm(g)
    return float(np.linalg.norm(a - g) / (denom if denom > 0 else 1.0))


def assert_close(ours, gold, tol: float = FLOAT_TOL, what: str = "") -> None:
    err = rel_l2(ours, gold)
    assert err < tol, f"{what}: relative L2 error {err:.3e} >= {tol:g}"


def _to_numpy(x):
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return x


@cache
def load_npz(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))

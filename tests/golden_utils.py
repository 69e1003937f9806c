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


def frontend_calls(golden: Path, lang: str) -> list[tuple[str, dict]]:
    """Every ``clean_text`` call in ``lang`` recorded in frontend_cases.json, as (case id, call)."""
    cases = load_json(Path(golden) / "frontend_cases.json")["cases"]
    return [(case["id"], call) for case in cases for call in case["g2p_calls"] if call["lang"] == lang]


def frontend_call_params(lang: str) -> list:
    """The same calls as ``pytest.param``s (id ``<case>-<index>``) for parametrising at collection time."""
    import pytest
    from conftest import golden_dir

    path = golden_dir() / "frontend_cases.json"
    if not path.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{path} not found"))]
    cases = load_json(path)["cases"]
    return [
        pytest.param(call, id=f"{case['id']}-{index}")
        for case in cases
        for index, call in enumerate(case["g2p_calls"])
        if call["lang"] == lang
    ]


def named_rule_reason(call: dict) -> str | None:
    """Why a recorded ``clean_text`` call cannot match: a named rule of :mod:`studio.text.deviations` (a deliberate
    departure from upstream) acts on its text. ``None`` when no rule does."""
    from studio.text import deviations

    kind = {"en": deviations.ENGLISH_TEXT}.get(call["lang"])
    rules = deviations.covering(call["text"], kind) if kind else []
    return "; ".join(str(rule) for rule in rules) or None


def v2_symbols(golden: Path) -> set[str]:
    """The v2 phone table, from the spec folder (``STUDIO_SPEC_DIR``; it does not travel with the goldens)."""
    from conftest import spec_dir

    return set(load_json(spec_dir() / "symbols_v2.json")["v2"]["symbols"])


def clean_text_failures(calls: list[tuple[str, dict]], lang: str) -> list[str]:
    """One line per recorded call whose ``clean_text`` result (norm text, phones, word2ph, phone ids) differs."""
    from studio.text import clean_text, phones_to_ids

    failures = []
    for case_id, call in calls:
        got = clean_text(call["text"], lang)
        want = (call["norm_text"], call["phones"], call["word2ph"])
        if (got.norm_text, got.phones, got.word2ph) != want:
            failures.append(f"{case_id} {call['text']!r}: got {got} want {want}")
        elif phones_to_ids(got.phones) != call["phone_ids"]:
            failures.append(f"{case_id} {call['text']!r}: phone ids differ")
    return failures

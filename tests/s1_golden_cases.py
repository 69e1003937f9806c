"""Reading the s1 (GPT) golden runs: every case and parameter comes from golden_runs.json + golden_tensors.npz."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from conftest import golden_dir
from golden_utils import load_json, load_npz


def runs() -> dict:
    return load_json(golden_dir() / "golden_runs.json")


def tensors(golden: Path | None = None) -> dict[str, np.ndarray]:
    return load_npz(str((golden or golden_dir()) / "golden_tensors.npz"))


def sampling_tensors(golden: Path | None = None) -> dict[str, np.ndarray]:
    return load_npz(str((golden or golden_dir()) / "golden_sampling.npz"))


def s1_run_names(kind: str) -> list[str]:
    """Names of the s1 runs of one kind: "naive" (infer_panel), "batch" (infer_panel_batch_infer), "train"."""
    out = []
    for name, run in runs()["s1"].items():
        if not isinstance(run, dict) or "function" not in run:
            continue
        fn = run["function"]
        if "batch_infer" in fn:
            found = "batch"
        elif "forward" in fn:
            found = "train"
        elif "infer_panel" in fn:
            found = "naive"
        else:
            continue
        if found == kind:
            out.append(name)
    return out


_EXPR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(\[.*\])?\s*$")


def resolve(expr: str | None) -> torch.Tensor | None:
    """Turn a golden_runs.json input expression such as ``s1_in_bert[:, :, n_prompt_phones:]`` into a tensor.

    Names are npz keys; the index may use the scalar settings of the ``s1`` section (n_prompt_phones, …).
    """
    if expr is None:
        return None
    m = _EXPR.match(expr)
    assert m, f"unsupported input expression {expr!r}"
    array = tensors()[m.group(1)]
    if m.group(2):
        scalars = {k: v for k, v in runs()["s1"].items() if isinstance(v, int)}
        index = eval(f"np.s_{m.group(2)}", {"__builtins__": {}, "np": np}, scalars)  # noqa: S307 - test data
        array = array[index]
    return torch.from_numpy(np.ascontiguousarray(array))


def sampling_kwargs(run: dict) -> dict:
    """Decoding parameters of a run. A run with a ``seed`` gets a generator seeded like upstream's global RNG
    after ``torch.manual_seed(seed)`` (both draw the same exponential variates)."""
    kwargs = {k: run[k] for k in ("top_k", "top_p", "temperature", "repetition_penalty", "early_stop_num")}
    if run.get("seed") is not None:
        kwargs["generator"] = torch.Generator().manual_seed(int(run["seed"]))
    return kwargs

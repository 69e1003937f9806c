"""bench/gpu_check.sh — the script a lent GPU machine runs once, blind — in its --dry-run mode on the CPU:
every stage runs through the real code paths with tiny models, and the time budget holds (stages cut or
skipped, the script still finishes and exits 0)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"


def _run(tmp_path: Path, budget_s: int) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "OUT": str(tmp_path), "GPU_CHECK_PYTHON": sys.executable, "GPU_CHECK_BUDGET_S": str(budget_s)}
    start = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=budget_s + 120)  # fmt: skip
    return done, time.monotonic() - start


@pytest.mark.slow
def test_dry_run_runs_every_stage_and_logs_it(tmp_path):
    done, _ = _run(tmp_path, 345)
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    for stage in ("env", "gpt", "e2e", "train-gpt", "train-sovits"):
        assert f"[{stage}] OK" in out, out[-3000:]
    assert "FAILED" not in out and "NO CUDA" in out  # this machine's torch is the CPU wheel: said plainly
    # the static step gave the dynamic path's logits; the 16-bit one stayed close
    fp32 = re.search(r"static eager fp32 .*rel L2 ([0-9.e+-]+), top-1 ([0-9.]+)%", out)
    half = re.search(r"static eager bf16 .*rel L2 ([0-9.e+-]+)", out)
    assert fp32 and float(fp32.group(1)) < 1e-5 and float(fp32.group(2)) == 100.0, out
    assert half and float(half.group(1)) < 5e-2, out
    assert out.count("losses finite: True") == 2
    assert (tmp_path / "gpu_check.log").read_text(encoding="utf-8").strip() == out.strip()


@pytest.mark.slow
def test_the_budget_cuts_stages_and_the_script_still_finishes(tmp_path):
    done, seconds = _run(tmp_path, 20)
    out = done.stdout
    assert done.returncode == 0, out[-3000:]
    assert "[env] OK" in out and re.search(r"SKIPPED|TIMED OUT", out), out[-3000:]
    assert "===== done" in out and seconds < 20 + 15

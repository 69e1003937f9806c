"""A whole training job in a child process with the tiny models: killed with SIGKILL in the middle, resumed,
finished with the planned step counts, epoch samples and readable outputs."""

from __future__ import annotations

import json
import os
import signal
import time

import torch
from conftest import build_voice_workspace, tiny_pretrained_assets


def _wait_for(predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_job_killed_with_sigkill_resumes_and_finishes(tmp_path, golden, voices, tiny_s2_pth):
    from studio.services.training import TrainingOptions, TrainingService
    from studio.training.checkpoints import load_checkpoint
    from studio.training.gpt_trainer import load_trained_gpt
    from studio.training.sovits_trainer import load_trained_sovits

    pretrained = tiny_pretrained_assets(tmp_path / "pre", golden, tiny_s2_pth)
    ws = build_voice_workspace(tmp_path / "ws", voices, "joe")
    service = TrainingService(ws, pretrained, device="cpu")
    max_steps = 4
    options = TrainingOptions(
        max_steps=max_steps, batch_size=2, lora_rank=4, checkpoint_every=1, sample_max_tokens=30, gpt_lr=1e-3
    )
    run_id = service.start("joe", options)
    run_dir = service.run_dir(run_id)

    def gpt_step_at_least(n: int) -> bool:
        events = service.events(run_id).events
        return any(e.kind == "step" and e.stage == "gpt" and (e.step or 0) >= n for e in events)

    _wait_for(lambda: gpt_step_at_least(2) or service.status(run_id).finished, 240)
    pid = int((run_dir / "pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: service.status(run_id).finished, 30)
    assert service.status(run_id).state == "interrupted"
    assert load_checkpoint(run_dir / "checkpoints" / "gpt.pt").state.step >= 1  # intact after the kill

    service.resume(run_id)
    status = service.wait(run_id, timeout=400)
    assert status.state == "done", (status, (run_dir / "job.log").read_text()[-2000:])
    result = json.loads((run_dir / "result.json").read_text())
    assert {s: result["stages"][s]["steps"] for s in ("gpt", "sovits")} == {"gpt": max_steps, "sovits": max_steps}
    for stage in ("gpt", "sovits"):
        assert load_checkpoint(run_dir / "checkpoints" / f"{stage}.pt").state.finished
        sample = run_dir / result["stages"][stage]["sample"]
        assert sample.is_file() and sample.stat().st_size > 1000
    kinds = [e.kind for e in service.events(run_id).events]
    assert kinds.count("start") == 2 and kinds[-1] == "done"
    steps = [e.step for e in service.events(run_id).events if e.kind == "step" and e.stage == "gpt"]
    assert steps[-1] == max_steps
    gpt = load_trained_gpt(pretrained.gpt_path, run_dir, result["stages"]["gpt"], torch.device("cpu"))
    base = load_trained_gpt(pretrained.gpt_path, run_dir, None, torch.device("cpu"))
    changed = [k for k, v in gpt.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert changed and all(".h.layers." in f".{k}" for k in changed)  # only adapted layers moved
    sovits = load_trained_sovits(pretrained.sovits_path, run_dir, result["stages"]["sovits"], torch.device("cpu"))
    assert sovits.enc_q is None
    assert [r.run_id for r in service.list_runs("joe")] == [run_id]
    assert service.latest_outputs("joe").weights["gpt"] == run_dir / "gpt_lora.safetensors"

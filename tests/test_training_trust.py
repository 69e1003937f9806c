"""Training a user can trust: a killed run says why and resumes without doubled curve points or leftover
temp files, one training per project at a time, and refusals that name the real cause."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import build_voice_workspace, tiny_pretrained_assets

from studio.errors import TrainingError

REPO = Path(__file__).resolve().parents[1]


def _wait_for(predicate, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "studio", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture()
def project(tmp_path, golden, voices, tiny_s2_pth):
    from studio.services.training import TrainingService

    pretrained = tiny_pretrained_assets(tmp_path / "pre", golden, tiny_s2_pth)
    root = build_voice_workspace(tmp_path / "ws", voices, "joe")
    return TrainingService(root, pretrained, device="cpu"), pretrained


def test_killed_run_says_why_and_resumes_without_duplicates_or_temp_files(project):
    from studio.services.training import TrainingOptions, TrainingService
    from studio.training.events import read_events

    service, pretrained = project
    options = TrainingOptions(
        stages=("gpt",), max_steps=6, batch_size=2, lora_rank=4, checkpoint_every=3, sample_max_tokens=20
    )
    run_id = service.start("joe", options)
    run_dir = service.run_dir(run_id)

    # a second training of the same project, from another service (another window or terminal), is refused
    with pytest.raises(TrainingError, match="Another training of 'joe' is running"):
        TrainingService(service.workspace_root, pretrained, device="cpu").start("joe", options)
    refused = _cli("train", "--name", "joe", "--workspace", str(service.workspace_root), "--pretrained",
                   str(pretrained.root), "--device", "cpu", "--detach")  # fmt: skip
    assert refused.returncode != 0 and "Another training of 'joe' is running" in refused.stderr

    def gpt_steps() -> list[int]:
        return [e.step for e in read_events(run_dir / "events.jsonl") if e.kind == "step" and e.stage == "gpt"]

    _wait_for(lambda: max(gpt_steps(), default=0) >= 4 or service.status(run_id).finished, 300)
    os.kill(int((run_dir / "pid").read_text()), signal.SIGKILL)
    killed_at = max(gpt_steps(), default=0)
    _wait_for(lambda: service.status(run_id).finished, 30)
    status = service.status(run_id)
    assert status.state == "interrupted" and "killed by signal 9" in status.message, status
    _wait_for(lambda: any(e.kind == "interrupted" for e in read_events(run_dir / "events.jsonl")), 10)
    # another process (a restarted studio) reads the same reason from the run's events
    assert "signal 9" in TrainingService(service.workspace_root, pretrained).status(run_id).message

    stale = run_dir / "checkpoints" / ".gpt.pt.x1y2.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    service.resume(run_id)
    status = service.wait(run_id, timeout=400)
    assert status.state == "done", (run_dir / "job.log").read_text()[-2000:]
    assert not stale.exists()
    steps = gpt_steps()
    assert steps == sorted(set(steps)) and steps[-1] == 6, steps  # every step once, in order
    epochs = [e.epoch for e in read_events(run_dir / "events.jsonl") if e.kind == "sample" and e.stage == "gpt"]
    assert len(epochs) == len(set(epochs))
    assert not (service.workspace_root / "joe" / "runs" / ".training.lock").exists()  # released at the end
    from studio.services.training_time import estimate_start

    _, estimate = estimate_start(service, "joe", options)
    assert estimate.seconds > 0
    if steps[-1] > killed_at:  # the resumed run trained (a kill after the last step leaves nothing to time)
        assert estimate.measured  # the next estimate uses the speed measured here


def test_a_stale_lock_from_a_dead_process_is_taken_over(project):
    from studio.training.lock import ProjectLock

    service, _ = project
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ProjectLock(service.workspace_root / "joe" / "runs", "joe").acquire(dead.pid, "20000101-000000-dead")
    from studio.services.training_time import estimate_start

    _, estimate = estimate_start(service, "joe", _quick())
    assert estimate.seconds > 0 and not estimate.measured  # nothing measured on this computer yet: rough
    run_id = service.start("joe", _quick())
    service.stop(run_id)
    assert service.wait(run_id, timeout=300).finished


def _quick():
    from studio.services.training import TrainingOptions

    return TrainingOptions(stages=("gpt",), max_steps=1, batch_size=2, lora_rank=4, sample_max_tokens=10)


def test_a_dataset_without_transcripts_is_refused_for_that_reason(project):
    service, pretrained = project
    listing = service.workspace_root / "joe" / "dataset.list"
    lines = [line.rsplit("|", 1)[0] + "|" for line in listing.read_text(encoding="utf-8").splitlines()]
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _cli("train", "--name", "joe", "--workspace", str(service.workspace_root), "--pretrained",
                str(pretrained.root), "--device", "cpu")  # fmt: skip
    assert done.returncode != 0
    assert "transcript" in done.stderr and "0.0 s" not in done.stderr, done.stderr


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/studio-pwned",))


def test_a_refused_base_model_is_named_not_reported_as_missing_audio(project):
    service, pretrained = project
    pretrained.sovits_path.unlink()  # a symlink to the session's shared tiny model: replace the link, not its target
    torch.save({"weight": _Payload()}, pretrained.sovits_path)
    run_id = service.start("joe", _quick())
    status = service.wait(run_id, timeout=300)
    assert status.state == "error"
    assert "refused to open" in status.message and "usable audio" not in status.message, status.message

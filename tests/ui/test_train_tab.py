"""Train tab handlers against a scripted training service: what the progress panel shows for each job state."""

from __future__ import annotations

from pathlib import Path

import pytest

gr = pytest.importorskip("gradio")

from studio.services.training import RunStatus  # noqa: E402
from studio.training.events import EventPage, TrainingEvent  # noqa: E402
from studio.ui.tabs.train import N_PROGRESS, TrainHandlers  # noqa: E402


class FakeTraining:
    def __init__(self, tmp: Path, events: list[TrainingEvent], state: str) -> None:
        self.dir, self.log, self.state = tmp, events, state

    def events(self, run_id: str, since: int = 0) -> EventPage:
        return EventPage(self.log[since:], len(self.log))

    def status(self, run_id: str) -> RunStatus:
        return RunStatus(run_id, self.state)

    def run_dir(self, run_id: str) -> Path:
        return self.dir

    def list_runs(self, name: str) -> list[RunStatus]:
        return [RunStatus("r1", self.state)]


class FakeStudio:
    def __init__(self, tmp: Path, training: FakeTraining) -> None:
        self.workspace_root = tmp
        self.training = training


class FakeUI:
    lang = "en"
    current_project = "demo"

    def t(self, key: str, **fmt) -> str:
        return key + (str(sorted(fmt.items())) if fmt else "")


def _steps(stage: str, n: int, **losses: float) -> list[TrainingEvent]:
    return [
        TrainingEvent("step", stage=stage, epoch=1, step=i, total_steps=n, losses=dict(losses), eta_s=10.0 * (n - i))
        for i in range(1, n + 1)
    ]


def _handlers(tmp_path, events, state):
    return TrainHandlers(FakeStudio(tmp_path, FakeTraining(tmp_path, events, state)), FakeUI())


def test_running_job_shows_curves_eta_and_a_stop_button(tmp_path):
    events = [
        *_steps("gpt", 3, loss=7.0, top3_acc=0.1),
        TrainingEvent("sample", stage="gpt", path="samples/gpt_e1.wav"),
    ]
    out = _handlers(tmp_path, events, "running").progress("demo", "r1", 0)
    assert len(out) == N_PROGRESS
    status, gpt, sovits, sample, _samples, add_voice, since, timer, stop, resume = out
    assert sorted(set(gpt["series"])) == ["loss", "top3_acc"] and sorted(set(gpt["step"])) == [1, 2, 3]
    assert sovits is None  # no SoVITS data yet: nothing drawn (an empty frame would break the plot)
    assert "train.eta" in status and "train.state.running" in status
    assert sample == str(tmp_path / "samples" / "gpt_e1.wav")
    assert since == len(events)
    assert stop["interactive"] is True and resume["interactive"] is False and add_voice["interactive"] is False
    assert timer.active is True


def test_finished_and_interrupted_jobs(tmp_path):
    done = _handlers(tmp_path, [*_steps("gpt", 2, loss=7.0), TrainingEvent("done")], "done").progress("demo", "r1", 0)
    assert done[5]["interactive"] is True  # add to my voices
    assert done[7].active is False  # the timer stops polling
    killed = _handlers(tmp_path, _steps("sovits", 2, mel=3.0), "interrupted").progress("demo", "r1", 0)
    assert killed[9]["interactive"] is True and killed[8]["interactive"] is False  # resume, not stop
    assert "train.state.interrupted" in killed[0]


def test_timer_tick_redraws_only_when_new_events_arrive(tmp_path):
    events = _steps("gpt", 2, loss=7.0)
    handlers = _handlers(tmp_path, events, "running")
    seen = len(events)
    assert handlers.tick("demo", "r1", seen) == tuple(gr.skip() for _ in range(N_PROGRESS))
    handlers.training.log.append(_steps("gpt", 3, loss=6.0)[-1])
    redrawn = handlers.tick("demo", "r1", seen)
    assert list(redrawn[1]["loss"]) == [7.0, 7.0, 6.0] and redrawn[6] == 3

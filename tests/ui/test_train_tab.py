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

    def epoch_report(self, run_id: str):
        from studio.services.epoch_choice import load_report

        return load_report(self.dir)


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
    status, gpt, accuracy, sovits, sample, _samples, add_voice, since, timer, stop, resume = out
    assert set(gpt["series"]) == {"train.series.gpt_loss"} and sorted(set(gpt["step"])) == [1, 2, 3]
    # accuracy on its own plot, in percent, named from the locale table (not "top3_acc")
    assert set(accuracy["series"]) == {"train.series.top3_acc"} and list(accuracy["value"]) == [10.0] * 3
    assert sovits is None  # no SoVITS data yet: nothing drawn (an empty frame would break the plot)
    assert "train.eta" in status and "train.state.running" in status
    assert sample == str(tmp_path / "samples" / "gpt_e1.wav")
    assert since == len(events)
    assert stop["interactive"] is True and resume["interactive"] is False and add_voice["interactive"] is False
    assert timer.active is True


def test_finished_and_interrupted_jobs(tmp_path):
    done = _handlers(tmp_path, [*_steps("gpt", 2, loss=7.0), TrainingEvent("done")], "done").progress("demo", "r1", 0)
    assert done[6]["interactive"] is True  # add to my voices
    assert done[8].active is False  # the timer stops polling
    killed = _handlers(tmp_path, _steps("sovits", 2, mel=3.0), "interrupted").progress("demo", "r1", 0)
    assert killed[10]["interactive"] is True and killed[9]["interactive"] is False  # resume, not stop
    assert "train.state.interrupted" in killed[0]


def test_timer_tick_redraws_only_when_new_events_arrive(tmp_path):
    events = _steps("gpt", 2, loss=7.0)
    handlers = _handlers(tmp_path, events, "running")
    seen = len(events)
    assert handlers.tick("demo", "r1", seen) == tuple(gr.skip() for _ in range(N_PROGRESS))
    handlers.training.log.append(_steps("gpt", 3, loss=6.0)[-1])
    redrawn = handlers.tick("demo", "r1", seen)
    assert list(redrawn[1]["value"]) == [7.0, 7.0, 6.0] and redrawn[7] == 3


def test_epoch_panel_shows_the_scores_the_recommendation_and_the_picked_epoch(tmp_path):
    from studio.audio.io import save_wav
    from studio.services.epoch_choice import EpochReport, EpochScore, recommend, save_report
    from studio.ui.tabs._epoch_choice import N_OUTPUTS, EpochPanel

    scores = [
        EpochScore(1, 1, 1, cer=0.40, similarity=0.91, samples=["epoch_choice/e1_s1.wav"]),
        EpochScore(2, 2, 1, cer=0.05, similarity=0.83, samples=["epoch_choice/e2_s1.wav"]),
    ]
    for n in (1, 2):
        save_wav(tmp_path / f"epoch_choice/e{n}_s1.wav", [0.1 * n] * 3200, 32000)
    report = EpochReport("r1", "en", ["A sentence."], "resemblyzer", 1, scores)
    report.recommended, report.reason = recommend(scores)
    save_report(tmp_path, report)
    studio = FakeStudio(tmp_path, FakeTraining(tmp_path, [TrainingEvent("done")], "done"))
    panel = EpochPanel(studio, FakeUI())
    out = panel.refresh("demo", "r1")
    assert len(out) == N_OUTPUTS
    table, summary, pick, listen, score = out
    assert list(table.iloc[:, 0]) == ["", "★"] and list(table.iloc[:, 4]) == ["40.0%", "5.0%"]
    assert "train.epochs.recommended[('epoch', 2)]" in summary and "train.epochs.reason.closest" in summary
    assert pick["value"] == 2 and [v for _, v in pick["choices"]] == [1, 2]
    assert listen == str(tmp_path / "epoch_choice/e2_s1.wav") and score["visible"] is False
    assert panel.listen("demo", "r1", 1) == str(tmp_path / "epoch_choice/e1_s1.wav")


def test_epoch_panel_offers_to_score_a_finished_run_without_a_report(tmp_path):
    from studio.ui.tabs._epoch_choice import EpochPanel

    studio = FakeStudio(tmp_path, FakeTraining(tmp_path, [TrainingEvent("done")], "done"))
    table, summary, pick, _, score = EpochPanel(studio, FakeUI()).refresh("demo", "r1")
    assert table is None and "train.epochs.none" in summary and score["visible"] is True
    running = FakeStudio(
        tmp_path, FakeTraining(tmp_path, [TrainingEvent("step", stage="epochs", step=1, total_steps=3)], "running")
    )
    _, summary, _, _, score = EpochPanel(running, FakeUI()).refresh("demo", "r1")
    assert "train.epochs.scoring" in summary and "('done', 1)" in summary and score["visible"] is False


def test_time_left_counts_the_stages_still_to_come_and_a_killed_run_says_why(tmp_path):
    from studio.training.run_layout import RunConfig

    RunConfig("demo", str(tmp_path), str(tmp_path), "r1", sovits_epochs=4).save(tmp_path / "run.json")
    events = [TrainingEvent("step", stage="features", step=12, total_steps=12), *_steps("gpt", 3, loss=7.0)]
    events[-1].eta_s = 0.0  # the GPT stage is at its end, the SoVITS stage has not begun
    handlers = _handlers(tmp_path, events, "running")
    handlers.training.workspace_root = tmp_path
    status = handlers.progress("demo", "r1", 0)[0]
    left = [line for line in status.split("\n\n") if line.startswith("train.eta")]
    assert left and "0.0 s" not in left[0] and "eta" in left[0], status

    class Killed(FakeTraining):
        def status(self, run_id):
            return RunStatus(run_id, "interrupted", message="killed by signal 9 (SIGKILL)")

    killed = TrainHandlers(FakeStudio(tmp_path, Killed(tmp_path, events, "interrupted")), FakeUI())
    assert "killed by signal 9" in killed.progress("demo", "r1", 0)[0]

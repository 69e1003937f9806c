"""Train tab: "Which epoch to keep" — the per-epoch listening scores of a run, the recommended epoch with its
reason, a picker (with the chosen epoch's first test sentence to listen to), and a button that scores an older
run on demand. "Add to my voices" takes the picked epoch (the recommended one unless the user picks another).

The scores come from ``runs/<id>/epochs.json`` (:mod:`studio.services.epoch_choice`), written by the training
job's last stage, so a page reload shows them without measuring anything again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.tabs._shared import guard, model_queue, on_language, project_name, tr, widget

RUNNING = ("pending", "running")
N_OUTPUTS = 5  # table, summary, picker, listen, score button


class EpochPanel:
    def __init__(self, studio: Any, ui: Any) -> None:
        self.studio, self.ui = studio, ui

    def t(self, key: str, **fmt: Any) -> str:
        return tr(self.ui, key, **fmt)

    def refresh(self, project: Any, run_id: str | None) -> tuple:
        """What the panel shows for ``run_id``: the table, the recommendation (or progress), the picker."""
        training = self.studio.training
        if not project_name(project, self.ui) or not run_id:
            return self._empty("")
        state = training.status(run_id).state
        report = training.epoch_report(run_id)
        if report is None or not report.scores:
            if state in RUNNING:
                return self._empty(self._progress(run_id))
            done = state == "done"
            return self._empty(self.t("train.epochs.none") if done else "", can_score=done)
        summary = self.summary(report)
        if state in RUNNING:
            summary = self._progress(run_id) + "\n\n" + summary
        choices = [(self._option(s.number, s.number == report.recommended), s.number) for s in report.scores]
        run_dir = training.run_dir(run_id)
        return (
            self.table(report),
            summary,
            gr.update(choices=choices, value=report.recommended, interactive=state not in RUNNING),
            _listen(report, report.recommended, run_dir),
            gr.update(visible=False),
        )

    def listen(self, project: Any, run_id: str | None, number: Any) -> Any:
        if not project_name(project, self.ui) or not run_id or number in (None, ""):
            return None
        report = self.studio.training.epoch_report(run_id)
        return _listen(report, int(number), self.studio.training.run_dir(run_id)) if report else None

    def score(self, project: Any, run_id: str | None) -> tuple:
        """Score an older run now (only epochs not measured yet)."""
        if not project_name(project, self.ui) or not run_id:
            return self._empty("")
        self.studio.training.score_epochs(run_id)
        return self.refresh(project, run_id)

    def tick(self, project: Any, run_id: str | None) -> tuple:
        """While the job runs (it scores the epochs last), follow it; afterwards the status change refreshes."""
        if run_id and self.studio.training.status(run_id).state in RUNNING:
            return self.refresh(project, run_id)
        return tuple(gr.skip() for _ in range(N_OUTPUTS))

    # ---- texts -----------------------------------------------------------------------------------
    def table(self, report: Any) -> Any:
        import pandas as pd

        columns = [self.t(f"train.epochs.col.{c}") for c in ("best", "epoch", "gpt", "sovits", "cer", "sim", "score")]
        base = self.t("train.epochs.base")
        rows = [
            [
                "★" if s.number == report.recommended else "",
                s.number,
                base if s.gpt_epoch is None else s.gpt_epoch,
                base if s.sovits_epoch is None else s.sovits_epoch,
                "—" if s.cer is None else f"{100 * s.cer:.1f}%",
                "—" if s.similarity is None else f"{s.similarity:.3f}",
                "—" if s.score is None else f"{s.score:.3f}",
            ]
            for s in sorted(report.scores, key=lambda s: s.number)
        ]
        return pd.DataFrame(rows, columns=columns)

    def summary(self, report: Any) -> str:
        if report.recommended is None:
            return ""
        reason = " ".join(self.t(f"train.epochs.reason.{c}", **report.reason.params) for c in report.reason.codes)
        return self.t("train.epochs.recommended", epoch=report.recommended) + " " + reason

    def _option(self, number: int, best: bool) -> str:
        return self.t("train.epochs.option_best" if best else "train.epochs.option", epoch=number)

    def _progress(self, run_id: str) -> str:
        steps = [e for e in self.studio.training.events(run_id).events if e.stage == "epochs" and e.kind == "step"]
        if not steps:
            return self.t("train.epochs.waiting")
        return self.t("train.epochs.scoring", done=steps[-1].step or 0, total=steps[-1].total_steps or "?")

    def _empty(self, summary: str, can_score: bool = False) -> tuple:
        return (None, summary, gr.update(choices=[], value=None), None, gr.update(visible=can_score))


def _listen(report: Any, number: int | None, run_dir: Path) -> str | None:
    score = report.score_of(number) if number is not None else None
    wavs = [run_dir / p for p in (score.samples if score else [])]
    return str(wavs[0]) if wavs and wavs[0].is_file() else None


class EpochWidgets:
    """The panel's components; :meth:`wire` connects them once the tab's run picker, status and timer exist."""

    def __init__(self, studio: Any, ui: Any) -> None:
        self.panel, self.ui = EpochPanel(studio, ui), ui
        with widget(ui, gr.Accordion, label="@train.epochs.title", open=True, elem_id="train-epochs-box"):
            widget(ui, gr.Markdown, value="@train.epochs.intro")
            self.table = gr.Dataframe(value=None, interactive=False, wrap=True, elem_id="train-epochs")
            self.summary = gr.Markdown(elem_id="train-epochs-summary")
            with gr.Row():
                self.pick = widget(ui, gr.Dropdown, label="@train.epochs.pick", choices=[], elem_id="train-epoch-pick")
                self.listen = widget(
                    ui,
                    gr.Audio,
                    label="@train.epochs.listen",
                    type="filepath",
                    interactive=False,
                    elem_id="train-epoch-listen",
                )
            self.score = widget(ui, gr.Button, value="@train.epochs.score", visible=False, elem_id="train-score-epochs")

    def wire(self, project: Any, run: Any, status: Any, timer: Any) -> None:
        panel, outputs = self.panel, [self.table, self.summary, self.pick, self.listen, self.score]
        run.change(guard(panel.refresh), [project, run], outputs)
        status.change(guard(panel.refresh), [project, run], outputs, show_progress="hidden")
        timer.tick(guard(panel.tick), [project, run], outputs, show_progress="hidden")
        self.pick.input(guard(panel.listen), [project, run, self.pick], self.listen)
        self.score.click(guard(panel.score), [project, run], outputs, **model_queue())
        on_language(self.ui, guard(panel.refresh), [project, run], outputs)  # headers and reason are handler texts

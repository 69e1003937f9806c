"""Train tab: pick a preset in words, confirm consent, start / stop / resume a training job, watch the loss of
each stage live (``gr.Timer`` polls the job's events), hear the sample made after each epoch, and add the
finished voice to the library.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.services.training_time import estimate_start, save_preset, saved_preset
from studio.ui.tabs._epoch_choice import EpochWidgets
from studio.ui.tabs._shared import (
    fmt_seconds,
    guard,
    model_queue,
    need_project,
    on_language,
    on_load,
    project_name,
    recording_service,
    tr,
    user_error,
    widget,
)
from studio.ui.tabs._train_plots import PLOTS, curve_frame, curve_plot
from studio.ui.tabs._train_words import outcome_text, statement_in_language

PRESET_CHOICES = (
    ("Fast: a first voice quickly", "fast"),
    ("Balanced (recommended)", "balanced"),
    ("Best: more training, takes longest", "best"),
)
STAGE_TITLES = {"gpt": "train.stage.gpt", "sovits": "train.stage.sovits", "features": "train.stage.features"}
POLL_S = 2.0
RUNNING = ("pending", "running")
RESUMABLE = ("interrupted", "cancelled", "error")
N_PROGRESS = 11  # outputs of TrainHandlers.progress


class TrainHandlers:
    def __init__(self, studio: Any, ui: Any) -> None:
        self.studio = studio
        self.recordings = recording_service(studio)
        self.ui = ui

    def t(self, key: str, **fmt: Any) -> str:
        return tr(self.ui, key, **fmt)

    # ---- the training service (one place that knows its calls) ----------------------------------
    @property
    def training(self) -> Any:
        return self.studio.training

    def _runs(self, name: str) -> list[Any]:
        """The project's runs, newest first."""
        return list(self.training.list_runs(name))

    def _latest(self, name: str) -> Any | None:
        runs = self._runs(name)
        return runs[0] if runs else None

    # ---- readiness -------------------------------------------------------------------------------
    def options(self, preset: str, max_steps: float | None) -> Any:
        from studio.services.training import TrainingOptions

        steps = int(max_steps) if max_steps else None
        return TrainingOptions(preset=preset or "balanced", max_steps=steps)

    def readiness(self, project: Any, preset: str, max_steps: float | None) -> tuple:
        """What the run would do, or why it cannot start; the Start button is enabled only when it can."""
        from studio.errors import StudioError

        name = project_name(project, self.ui)
        if not name:
            return self.t("record.need_project"), gr.update(interactive=False)
        try:
            seconds, clips, _ = self.training.dataset_seconds(name)
            cfg, estimate = estimate_start(self.training, name, self.options(preset, max_steps))
        except StudioError as exc:
            return "⚠ " + str(exc), gr.update(interactive=False)
        text = (
            self.t("train.ready", clips=clips, usable=fmt_seconds(seconds))
            + "\n\n"
            + self.t(
                "train.plan",
                gpt_epochs=cfg.gpt_epochs,
                gpt_batch=cfg.gpt_batch_size,
                sovits_epochs=cfg.sovits_epochs,
                sovits_batch=cfg.sovits_batch_size,
                device=cfg.device,
            )
        )
        if cfg.max_steps:
            text += " " + self.t("train.plan_steps", steps=cfg.max_steps)
        basis = "train.estimate_measured" if estimate.measured else "train.estimate_rough"
        text += "\n\n" + self.t("train.estimate", time=fmt_seconds(estimate.seconds), basis=self.t(basis))
        return text + "\n\n" + self.base_text(), gr.update(interactive=True)

    def base_text(self, requested: str | None = None) -> str:
        """Which base model the run starts from and why, with a tip when a better base could be downloaded."""
        choice = self.training.base_choice(requested)
        text = self.t(f"train.base_{choice.reason}", version=choice.version)
        if choice.version == "v2" and "v2ProPlus" not in choice.present:
            text += " " + self.t("train.base_upgrade")
        return text

    def remember_preset(self, project: Any, preset: str) -> None:
        name = project_name(project, self.ui)
        if name:
            save_preset(self.training, name, preset)

    def consent_fields(self, project: Any) -> tuple:
        name = project_name(project, self.ui)
        record = self.recordings.load_consent(name) if name else None
        if record is None:  # the suggested statement, in the interface language of this page load
            return False, "", self.t("train.statement_default")
        return True, record.speaker_name, record.statement

    def statement_in_language(self, shown: str | None):
        return statement_in_language(self.ui, self.t, shown)

    # ---- actions ---------------------------------------------------------------------------------
    def start(
        self, project: Any, preset: str, max_steps: float | None, consent: bool, speaker: str, statement: str
    ) -> tuple:
        name = need_project(project, self.ui)
        self.recordings.save_consent(name, speaker or "", statement or "", bool(consent))
        run = self.training.start(name, self.options(preset, max_steps))
        gr.Info(self.t("train.started"))
        return (*self.runs_update(name, _run_id(run)), 0, gr.Timer(active=True))

    def stop(self, project: Any, run_id: str | None) -> str:
        need_project(project, self.ui)
        if not run_id:
            raise user_error(self.t("train.no_run"))
        self.training.stop(run_id)
        gr.Info(self.t("train.stopping"))
        return self.t("train.stopping")

    def resume(self, project: Any, run_id: str | None) -> tuple:
        need_project(project, self.ui)
        if not run_id:
            raise user_error(self.t("train.no_run"))
        run = self.training.resume(run_id)
        gr.Info(self.t("train.resumed"))
        return (_run_id(run) or run_id, 0, gr.Timer(active=True))

    def add_voice(self, project: Any, run_id: str | None, voice_name: str, epoch: Any = None) -> tuple:
        from studio.voicepack import ConsentRecord
        from studio.voicepack.official import FoundReference

        name = need_project(project, self.ui)
        if not run_id:
            raise user_error(self.t("train.no_run"))
        consent = self.recordings.load_consent(name)
        if consent is None:
            raise user_error(self.t("train.need_consent"))
        _, pick = self.studio.datasets.lint(name)
        if pick is None:
            raise user_error(self.t("train.no_reference"))
        record = ConsentRecord(consent.speaker_name, consent.statement, consent.date, consent.confirmed)
        reference = FoundReference(Path(pick.audio_path), pick.text, pick.language)
        voice = self.studio.voice_packs.register_trained_voice(
            name, run_id, record, reference, name=(voice_name or "").strip() or name,
            epoch=None if epoch in (None, "") else int(epoch),  # the picked epoch; None: the recommended one
        )  # fmt: skip
        gr.Info(self.t("train.voice_added", voice=voice.name))
        message = self.t("train.voice_added", voice=voice.name)
        bump = getattr(self.ui, "bump_library", None)
        return (message, bump()) if bump is not None and getattr(self.ui, "library_changed", None) else message

    # ---- progress --------------------------------------------------------------------------------
    def runs_update(self, name: str, selected: str | None = None) -> tuple:
        ids = [_run_id(r) for r in self._runs(name)] if name else []
        value = selected if selected in ids else (ids[0] if ids else None)
        return (gr.update(choices=ids, value=value),)

    def progress(self, project: Any, run_id: str | None, since: int) -> tuple:
        """Everything the progress panel shows, read from the run's events (polled by the timer)."""
        name = project_name(project, self.ui)
        if not name or not run_id:
            return (
                self.t("train.idle"),
                _empty_plot(),
                _empty_plot(),
                _empty_plot(),
                None,
                gr.update(choices=[], value=None),
                gr.update(interactive=False),
                0,
                gr.Timer(active=False),
                gr.update(interactive=False),
                gr.update(interactive=False),
            )
        page = self.training.events(run_id, since=0)
        events, next_since = page.events, page.next_since
        status = self.training.status(run_id)
        state = status.state
        samples = [e.path for e in events if e.kind == "sample" and e.path]
        run_dir = self.training.run_dir(run_id)
        sample_paths = [str(run_dir / p) for p in samples]
        latest = sample_paths[-1] if sample_paths else None
        running = state in RUNNING
        return (
            self.status_text(state, events, run_id, status.message),
            *(curve_frame(events, plot, self.t) for plot in PLOTS),
            latest,
            gr.update(choices=[(Path(p).stem, p) for p in sample_paths], value=latest),
            gr.update(interactive=state == "done"),
            next_since,
            gr.Timer(active=running),
            gr.update(interactive=state in RUNNING),
            gr.update(interactive=state in RESUMABLE),
        )

    def tick(self, project: Any, run_id: str | None, since: int) -> tuple:
        """Timer handler: nothing is re-rendered while no new event arrived."""
        name = project_name(project, self.ui)
        if name and run_id:
            fresh = self.training.events(run_id, since=int(since or 0)).events
            if not fresh and self.training.status(run_id).state in RUNNING:
                return tuple(gr.skip() for _ in range(N_PROGRESS))
        return self.progress(project, run_id, 0)

    def outcome(self, reason: str) -> str:
        return outcome_text(self.t, reason)

    def status_text(self, state: str, events: list, run_id: str | None = None, reason: str | None = None) -> str:
        lines = [self.t(f"train.state.{state}") if state else ""]
        steps = [e for e in events if e.kind == "step" and e.stage in ("gpt", "sovits")]
        if steps:
            last = steps[-1]
            stage = self.t(STAGE_TITLES.get(last.stage, last.stage))
            lines.append(
                self.t(
                    "train.progress",
                    stage=stage,
                    epoch=last.epoch or "-",
                    step=last.step or 0,
                    total=last.total_steps or "?",
                )
            )
        if run_id and state in RUNNING:  # every stage still to come, not just the current one
            from studio.services.training_time import time_left

            left = time_left(self.training, run_id, events)
            if left is not None:
                lines.append(self.t("train.eta", eta=fmt_seconds(left)))
        if reason and state in ("interrupted", "cancelled"):
            lines.append(self.t("train.reason", reason=self.outcome(reason)))
        errors = [e.message for e in events if e.kind == "error" and e.message]
        if errors:
            lines.append("⚠ " + errors[-1])
        return "\n\n".join(x for x in lines if x)

    def load(self, project: Any, preset: str, max_steps: float | None) -> tuple:
        """Page load / project switch: readiness, consent, runs, and the latest run's progress."""
        name = project_name(project, self.ui)
        runs = self.runs_update(name) if name else (gr.update(choices=[], value=None),)
        latest = self._latest(name) if name else None
        preset = (saved_preset(self.training, name) if name else None) or preset
        return (
            gr.update(value=preset),
            *self.readiness(project, preset, max_steps),
            *self.consent_fields(project),
            *runs,
            *self.progress(project, _run_id(latest) if latest else None, 0),
        )


def _run_id(run: Any) -> str | None:
    if run is None:
        return None
    if isinstance(run, str):
        return run
    return getattr(run, "run_id", None)


def _empty_plot() -> Any:
    """No data yet. ``None``, not an empty DataFrame: Gradio fixes a plot's column types from its first value,
    and an empty frame's types (object) would keep the real curves from being drawn later."""
    return None


# ---- layout + wiring ----------------------------------------------------------------------------------
def build_train_tab(studio: Any, ui: Any) -> None:
    tab = gr.context.Context.block  # the gr.Tab this builder runs in: re-check the dataset when it is opened
    h = TrainHandlers(studio, ui)
    project = ui.project
    widget(ui, gr.Markdown, value="@train.intro", elem_id="train-intro")
    readiness = gr.Markdown(elem_id="train-readiness")
    with gr.Row():
        with gr.Column(scale=3):
            preset = widget(
                ui,
                gr.Radio,
                choices=list(PRESET_CHOICES),
                value="balanced",
                label="@train.preset",
                info="@train.preset_info",
                elem_id="train-preset",
            )
            with widget(ui, gr.Accordion, label="@train.advanced", open=False):
                max_steps = widget(
                    ui,
                    gr.Number,
                    value=None,
                    precision=0,
                    minimum=0,
                    label="@train.max_steps",
                    info="@train.max_steps_info",
                    elem_id="train-max-steps",
                )
        with gr.Column(scale=2):
            widget(ui, gr.Markdown, value="@train.consent_title")
            consent = widget(ui, gr.Checkbox, value=False, label="@train.consent", elem_id="train-consent")
            speaker = widget(
                ui,
                gr.Textbox,
                label="@train.speaker",
                placeholder="@train.speaker_placeholder",
                elem_id="train-speaker",
            )
            statement = widget(
                ui,
                gr.Textbox,
                value=h.t("train.statement_default"),
                lines=2,
                label="@train.statement",
                elem_id="train-statement",
            )
    with gr.Row():
        start = widget(ui, gr.Button, value="@train.start", variant="primary", interactive=False, elem_id="train-start")
        stop = widget(ui, gr.Button, value="@train.stop", variant="stop", interactive=False, elem_id="train-stop")
        resume = widget(ui, gr.Button, value="@train.resume", interactive=False, elem_id="train-resume")
        run = widget(ui, gr.Dropdown, label="@train.run", choices=[], elem_id="train-run")
    status = gr.Markdown(elem_id="train-status")
    with gr.Row():
        gpt_plot = curve_plot(ui, "@train.gpt_plot", "@train.axis_loss", "train-plot-gpt")
        acc_plot = curve_plot(ui, "@train.acc_plot", "@train.axis_accuracy", "train-plot-accuracy")
        sovits_plot = curve_plot(ui, "@train.sovits_plot", "@train.axis_loss", "train-plot-sovits")
    with gr.Row():
        samples = widget(ui, gr.Dropdown, label="@train.samples", choices=[], elem_id="train-samples")
        sample = widget(ui, gr.Audio, label="@train.sample", type="filepath", interactive=False, elem_id="train-sample")
    epochs = EpochWidgets(studio, ui)  # which epoch to keep, by listening
    with gr.Row():
        voice_name = widget(
            ui,
            gr.Textbox,
            label="@train.voice_name",
            placeholder="@train.voice_name_placeholder",
            scale=3,
            elem_id="train-voice-name",
        )
        with gr.Column(scale=1, min_width=200):
            add_voice = widget(
                ui, gr.Button, value="@train.add_voice", variant="primary", interactive=False, elem_id="train-add-voice"
            )
    added = widget(ui, gr.Markdown, value="", elem_id="train-added")
    since = gr.State(0)
    timer = gr.Timer(POLL_S, active=False)

    progress_out = [status, gpt_plot, acc_plot, sovits_plot, sample, samples, add_voice, since, timer, stop, resume]
    start.click(
        guard(h.start),
        [project, preset, max_steps, consent, speaker, statement],
        [run, since, timer],
        api_name="train_start",
        **model_queue(),
    )
    stop.click(guard(h.stop), [project, run], status, api_name="train_stop")
    resume.click(guard(h.resume), [project, run], [run, since, timer], api_name="train_resume")
    run.change(guard(h.progress), [project, run, since], progress_out)
    timer.tick(guard(h.tick), [project, run, since], progress_out, show_progress="hidden")
    samples.change(lambda p: p, samples, sample)
    library = [ui.library_changed] if getattr(ui, "library_changed", None) is not None else []
    epochs.wire(project, run, status, timer)
    add_voice.click(
        guard(h.add_voice), [project, run, voice_name, epochs.pick], [added, *library], api_name="train_add_voice"
    )
    load_out = [preset, readiness, start, consent, speaker, statement, run, *progress_out]
    project.change(guard(h.load), [project, preset, max_steps], load_out)
    on_load(ui, h.load, [project, preset, max_steps], load_out)
    on_language(ui, guard(h.statement_in_language), statement, statement)
    on_language(ui, lambda: "", None, added)  # "Added the voice …" would stay in the old language
    ready_in = [project, preset, max_steps]
    preset.change(guard(h.readiness), ready_in, [readiness, start])
    preset.input(guard(h.remember_preset), [project, preset], None)
    max_steps.change(guard(h.readiness), ready_in, [readiness, start])
    if isinstance(tab, gr.Tab):  # opening the tab re-reads the dataset and the run (and its texts' language)
        tab.select(guard(h.readiness), ready_in, [readiness, start])
        tab.select(guard(h.progress), [project, run, since], progress_out, show_progress="hidden")

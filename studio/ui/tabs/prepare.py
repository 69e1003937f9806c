"""Prepare tab: hear the denoiser before/after, preview the slicer's cuts, run preparation (clean → slice →
transcribe → check) on the project's takes, proofread the clips (play, edit, delete, merge, split, undo),
read the check report with its fixes, and see the reference clip picked for the voice.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.ui.tabs._proofread import LIST_COLUMNS, ProofreadHandlers
from studio.ui.tabs._shared import (
    fmt_seconds,
    guard,
    model_queue,
    on_language,
    on_load,
    project_name,
    recording_service,
    user_error,
    widget,
)

CUT_COLUMNS = ("#", "prepare.col.start", "prepare.col.end", "prepare.col.length")
LANGUAGE_CHOICES = (("Detect automatically", "auto"), ("English", "en"), ("Chinese", "zh"), ("Japanese", "ja"))


class PrepareHandlers(ProofreadHandlers):
    def __init__(self, studio: Any, ui: Any) -> None:
        self.studio = studio
        self.takes = recording_service(studio)
        self.ui = ui

    # ---- takes & previews ------------------------------------------------------------------------
    def takes_state(self, project: Any) -> tuple:
        name = project_name(project, self.ui)
        takes = self.takes.list_takes(name) if name else []
        names = [t.name for t in takes]
        if not takes:
            status = self.t("prepare.no_takes")
        else:
            status = self.t(
                "prepare.takes_ready", count=len(takes), total=fmt_seconds(sum(t.levels.duration_s for t in takes))
            )
        can = bool(takes)
        return (
            gr.update(choices=names, value=names[0] if names else None),
            status,
            gr.update(interactive=can),
            gr.update(interactive=can),
            gr.update(interactive=can),
        )

    def preview_clean(self, project: Any, take: str | None, denoise: float) -> tuple:
        name = self._need_project(project)
        if not take:
            raise user_error(self.t("prepare.pick_take"))
        preview = self.takes.preview_clean(name, take, float(denoise))
        r = preview.report
        text = self.t(
            "prepare.clean_report",
            lufs_in=f"{r.loudness_before_lufs:.1f}",
            lufs_out=f"{r.loudness_after_lufs:.1f}",
            snr_in=f"{r.snr_before_db:.0f}",
            snr_out=f"{r.snr_after_db:.0f}",
        )
        return str(preview.before), str(preview.after), text

    def preview_cuts(self, project: Any, take: str | None, denoise: float, *slicer: float) -> tuple:
        name = self._need_project(project)
        if not take:
            raise user_error(self.t("prepare.pick_take"))
        preview = self.takes.preview_slices(name, take, self.options(denoise, "auto", False, *slicer))
        rows = [
            [i, round(s.start_s, 2), round(s.end_s, 2), round(s.duration_s, 2)]
            for i, s in enumerate(preview.slices, start=1)
        ]
        rows = self.frame(rows, CUT_COLUMNS)
        text = self.t("prepare.cuts_summary", count=len(preview.slices), threshold=f"{preview.threshold_db:.0f}")
        return _cuts_figure(preview, self.t("prepare.plot_time")), rows, text

    @staticmethod
    def options(
        denoise: float,
        language: str,
        transcribe: bool,
        threshold: float,
        min_len: float,
        min_gap: float,
        keep_sil: float,
        max_len: float,
    ):
        from studio.dataprep.pipeline import PrepOptions
        from studio.dataprep.slicing import SlicerConfig

        slicer = SlicerConfig(
            threshold_db=float(threshold),
            min_length_ms=int(min_len * 1000),
            min_interval_ms=int(min_gap),
            max_sil_kept_ms=int(keep_sil),
            max_length_ms=int(max(max_len, min_len) * 1000),
        )
        return PrepOptions(
            language=language or "auto", denoise=float(denoise), transcribe=bool(transcribe), slicer=slicer
        )

    def run(
        self,
        project: Any,
        denoise: float,
        language: str,
        transcribe: bool,
        threshold: float,
        min_len: float,
        min_gap: float,
        keep_sil: float,
        max_len: float,
        redo: bool = False,
        progress: Any = None,
    ) -> tuple:
        slicer = (threshold, min_len, min_gap, keep_sil, max_len)
        name = self._need_project(project)
        if not self.takes.list_takes(name):
            raise user_error(self.t("prepare.no_takes"))
        todo = self.takes.list_takes(name) if redo else self.takes.unprepared_takes(name)
        if not todo:  # nothing new: keep the clips and the corrections made to them
            gr.Info(self.t("prepare.all_prepared"))
            return (self.t("prepare.all_prepared"), *self.dataset_view(name), *self.clear_selection())
        takes = [t.path for t in todo]
        opts = self.options(denoise, language, transcribe, *slicer)

        def on_progress(stage: str, fraction: float, message: str) -> None:
            if progress is not None:
                progress(max(0.0, min(1.0, fraction)), desc=f"{self.t('prepare.stage.' + stage)}: {message}")

        report = self.studio.datasets.prepare(takes, name, opts, on_progress=on_progress)
        gr.Info(self.t("prepare.done", count=report.entries))
        summary = self.t(
            "prepare.summary",
            new=report.new_slices,
            entries=report.entries,
            usable=f"{report.lint.usable_minutes:.1f}",
            total=f"{report.lint.total_minutes:.1f}",
        )
        return (summary, *self.dataset_view(name), *self.clear_selection())

    def refresh(self, project: Any) -> tuple:
        return (*self.takes_state(project), *self.dataset_view(project), *self.clear_selection())

    def saved_state(self, project: Any) -> tuple:
        """The summary line and the denoise strength of the project's last preparation (after a reload)."""
        name = project_name(project, self.ui)
        report = self.studio.datasets.last_report(name) if name else None
        if not report:
            return "", gr.update()
        lint = report.get("lint") or {}
        summary = self.t(
            "prepare.summary",
            new=report.get("new_slices", 0),
            entries=report.get("entries", 0),
            usable=f"{float(lint.get('usable_minutes', 0.0)):.1f}",
            total=f"{float(lint.get('total_minutes', 0.0)):.1f}",
        )
        strengths = [s["clean"]["denoise"] for s in report.get("sources", []) if "denoise" in s.get("clean", {})]
        return summary, gr.update(value=strengths[-1]) if strengths else gr.update()


def _cuts_figure(preview: Any, time_label: str):
    """Waveform envelope of the cleaned take with each clip shaded and the cut points as lines."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 2.4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(preview.envelope_t, -preview.envelope, preview.envelope, color="#4b5563", linewidth=0)
    colors = ("#93c5fd", "#fcd34d")
    for i, s in enumerate(preview.slices):
        ax.axvspan(s.start_s, s.end_s, color=colors[i % 2], alpha=0.35, linewidth=0)
        ax.text((s.start_s + s.end_s) / 2, 0.92, str(i + 1), ha="center", va="top", fontsize=8)
        for x in (s.start_s, s.end_s):
            ax.axvline(x, color="#dc2626", linewidth=0.8)
    level = float(10 ** (preview.threshold_db / 20))
    ax.axhline(level, color="#16a34a", linestyle="--", linewidth=0.7)
    ax.axhline(-level, color="#16a34a", linestyle="--", linewidth=0.7)
    ax.set_xlim(0, max(preview.duration_s, 1e-3))
    ax.set_ylim(-1.0, 1.0)
    ax.set_yticks(np.array([-1.0, 0.0, 1.0]))
    ax.set_xlabel(time_label)
    fig.tight_layout()
    return fig


# ---- layout + wiring ----------------------------------------------------------------------------------
def build_prepare_tab(studio: Any, ui: Any) -> None:
    tab = gr.context.Context.block  # the gr.Tab this builder runs in: refresh the takes when it is opened
    h = PrepareHandlers(studio, ui)
    project = ui.project
    widget(ui, gr.Markdown, value="@prepare.intro", elem_id="prep-intro")
    takes_status = gr.Markdown(elem_id="prep-takes-status")
    take = widget(ui, gr.Dropdown, label="@prepare.take", choices=[], elem_id="prep-take")
    with widget(ui, gr.Accordion, label="@prepare.clean_title", open=True):
        with gr.Row():
            denoise = widget(
                ui,
                gr.Slider,
                minimum=0.0,
                maximum=1.0,
                value=0.0,
                step=0.05,
                label="@prepare.denoise",
                info="@prepare.denoise_info",
                elem_id="prep-denoise",
            )
            preview_clean = widget(
                ui, gr.Button, value="@prepare.preview_clean", interactive=False, elem_id="prep-preview-clean"
            )
        with gr.Row():
            before = widget(
                ui, gr.Audio, label="@prepare.before", type="filepath", interactive=False, elem_id="prep-before"
            )
            after = widget(
                ui, gr.Audio, label="@prepare.after", type="filepath", interactive=False, elem_id="prep-after"
            )
        clean_report = gr.Markdown(elem_id="prep-clean-report")
    with widget(ui, gr.Accordion, label="@prepare.slice_title", open=True):
        with gr.Row():
            threshold = widget(
                ui,
                gr.Slider,
                minimum=-60,
                maximum=-20,
                value=-34,
                step=1,
                label="@prepare.threshold",
                elem_id="prep-threshold",
            )
            min_len = widget(
                ui,
                gr.Slider,
                minimum=1,
                maximum=10,
                value=4,
                step=0.5,
                label="@prepare.min_len",
                elem_id="prep-min-len",
            )
            max_len = widget(
                ui,
                gr.Slider,
                minimum=4,
                maximum=25,
                value=10,
                step=0.5,
                label="@prepare.max_len",
                elem_id="prep-max-len",
            )
        with gr.Row():
            min_gap = widget(
                ui,
                gr.Slider,
                minimum=100,
                maximum=1000,
                value=300,
                step=10,
                label="@prepare.min_gap",
                elem_id="prep-min-gap",
            )
            keep_sil = widget(
                ui,
                gr.Slider,
                minimum=50,
                maximum=1000,
                value=500,
                step=10,
                label="@prepare.keep_sil",
                elem_id="prep-keep-sil",
            )
            preview_cuts = widget(
                ui, gr.Button, value="@prepare.preview_cuts", interactive=False, elem_id="prep-preview-cuts"
            )
        cuts_plot = widget(ui, gr.Plot, label="@prepare.cuts_plot", elem_id="prep-cuts-plot")
        cuts_table = gr.Dataframe(
            value=h.frame([], CUT_COLUMNS), interactive=False, max_height=260, elem_id="prep-cuts-table"
        )
        cuts_text = gr.Markdown(elem_id="prep-cuts-text")
    with gr.Row():
        language = widget(
            ui,
            gr.Dropdown,
            choices=list(LANGUAGE_CHOICES),
            value="auto",
            label="@prepare.language",
            elem_id="prep-language",
        )
        with gr.Column():
            transcribe = widget(ui, gr.Checkbox, value=True, label="@prepare.transcribe", elem_id="prep-transcribe")
            redo = widget(ui, gr.Checkbox, value=False, label="@prepare.redo", elem_id="prep-redo")
        with gr.Column(min_width=200):
            run = widget(ui, gr.Button, value="@prepare.run", variant="primary", interactive=False, elem_id="prep-run")
    run_summary = gr.Markdown(elem_id="prep-summary")

    widget(ui, gr.Markdown, value="@prepare.proof_title")
    widget(ui, gr.Markdown, value="@prepare.proof_help")
    table = gr.Dataframe(
        value=h.frame([], LIST_COLUMNS),
        interactive=False,
        wrap=True,
        max_height=420,
        column_widths=["6%", "30%", "10%", "38%", "16%"],
        elem_id="prep-list",
    )
    selected = gr.State(-1)
    selected_label = gr.Markdown(h.t("prepare.pick_clip"), elem_id="prep-selected")
    with gr.Row():
        clip_audio = widget(
            ui, gr.Audio, label="@prepare.clip_audio", type="filepath", interactive=False, elem_id="prep-clip-audio"
        )
        with gr.Column():
            clip_text = widget(
                ui, gr.Textbox, label="@prepare.clip_text", interactive=False, lines=2, elem_id="prep-clip-text"
            )
            with gr.Row():
                save_text = widget(
                    ui, gr.Button, value="@prepare.save_text", variant="primary", elem_id="prep-save-text"
                )
                delete = widget(ui, gr.Button, value="@prepare.delete", variant="stop", elem_id="prep-delete")
                merge = widget(ui, gr.Button, value="@prepare.merge", elem_id="prep-merge")
                undo = widget(ui, gr.Button, value="@prepare.undo", elem_id="prep-undo")
            with gr.Row(equal_height=True):
                split_at = widget(
                    ui,
                    gr.Slider,
                    minimum=0.0,
                    maximum=1.0,
                    value=0.5,
                    step=0.01,
                    label="@prepare.split_at",
                    elem_id="prep-split-at",
                )
                split = widget(ui, gr.Button, value="@prepare.split", elem_id="prep-split")
    widget(ui, gr.Markdown, value="@prepare.lint_title")
    lint_md = gr.Markdown(elem_id="prep-lint")
    widget(ui, gr.Markdown, value="@prepare.reference_title")
    with gr.Row():
        ref_audio = widget(
            ui, gr.Audio, label="@prepare.reference_audio", type="filepath", interactive=False, elem_id="prep-ref-audio"
        )
        ref_md = gr.Markdown(elem_id="prep-ref-text")
    next_step = gr.Markdown(elem_id="prep-next")

    slicer = [threshold, min_len, min_gap, keep_sil, max_len]
    takes_out = [take, takes_status, preview_clean, preview_cuts, run]
    view_out = [table, lint_md, ref_audio, ref_md, next_step]
    clip_out = [selected, clip_audio, clip_text, split_at, selected_label]
    preview_clean.click(
        guard(h.preview_clean),
        [project, take, denoise],
        [before, after, clean_report],
        api_name="prepare_preview_clean",
    )
    preview_cuts.click(
        guard(h.preview_cuts),
        [project, take, denoise, *slicer],
        [cuts_plot, cuts_table, cuts_text],
        api_name="prepare_preview_cuts",
    )
    run.click(
        guard(_with_progress(h.run)),
        [project, denoise, language, transcribe, *slicer, redo],
        [run_summary, *view_out, *clip_out],
        api_name="prepare_run",
        **model_queue(),
    )
    table.select(guard(h.select), [project, table], clip_out)
    proof = [*view_out, *clip_out]
    save_text.click(guard(h.save_text), [project, selected, clip_text], proof, api_name="prepare_edit_text")
    delete.click(guard(h.delete), [project, selected], proof, api_name="prepare_delete_clip")
    merge.click(guard(h.merge), [project, selected], proof, api_name="prepare_merge_clip")
    split.click(guard(h.split), [project, selected, split_at], proof, api_name="prepare_split_clip")
    undo.click(guard(h.undo), [project, selected], proof, api_name="prepare_undo")
    refresh_out = [*takes_out, *view_out, *clip_out]
    project.change(guard(h.refresh), project, refresh_out)
    on_load(ui, h.refresh, project, refresh_out)
    on_load(ui, h.saved_state, project, [run_summary, denoise])  # what was done, also after a reload
    project.change(guard(h.saved_state), project, [run_summary, denoise])
    on_language(ui, lambda p: h.saved_state(p)[0], project, run_summary)
    if isinstance(tab, gr.Tab):
        tab.select(guard(h.takes_state), project, takes_out)


def _with_progress(fn):
    """Give ``fn`` a ``gr.Progress`` as its last argument (Gradio fills in a parameter defaulting to one)."""

    def run(
        project,
        denoise,
        language,
        transcribe,
        threshold,
        min_len,
        min_gap,
        keep_sil,
        max_len,
        redo,
        progress=gr.Progress(),  # noqa: B008 - Gradio's way of injecting progress
    ):
        return fn(
            project, denoise, language, transcribe, threshold, min_len, min_gap, keep_sil, max_len, redo, progress
        )

    return run

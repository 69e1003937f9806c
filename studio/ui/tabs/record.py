"""Record & Upload tab: read a script into the microphone, check the level, keep or retake; upload files;
list, play and delete the project's takes. Takes are stored in the workspace by ``RecordingService``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.services.reading_script import READING_SCRIPTS, reading_script
from studio.ui.tabs._shared import (
    fmt_seconds,
    guard,
    need_project,
    on_language,
    on_load,
    project_name,
    recording_service,
    tr,
    user_error,
    widget,
)

SCRIPT_LANGUAGES = {"en": "English", "zh": "中文", "ja": "日本語"}
TABLE_COLUMNS = (
    "#",
    "record.col.take",
    "record.col.source",
    "record.col.length",
    "record.col.peak",
    "record.col.rms",
    "record.col.check",
)


# ---- handlers (plain functions over the services; the layout is below) --------------------------------
class RecordHandlers:
    def __init__(self, studio: Any, ui: Any) -> None:
        self.takes = recording_service(studio)
        self.ui = ui

    def t(self, key: str, **fmt: Any) -> str:
        return tr(self.ui, key, **fmt)

    def script(self, language: str) -> str:
        lines = [f"{i}. {s}" for i, s in enumerate(reading_script(language), start=1)]
        return "\n".join([self.t("record.script_intro"), "", *lines])

    def script_for_ui(self) -> tuple:
        """Page load: the script in the UI language."""
        lang = default_script_language(self.ui)
        return gr.update(value=lang), self.script(lang)

    def levels_text(self, levels: Any) -> str:
        head = self.t(
            "record.levels",
            peak=f"{levels.peak_db:.1f}",
            rms=f"{levels.rms_db:.1f}",
            length=fmt_seconds(levels.duration_s),
        )
        if levels.ok:
            verdict = "✓ " + self.t("record.level_ok")
        else:
            verdict = "\n\n".join("⚠ " + self.t(f"record.issue.{code}") for code in levels.issues)
        return f"{head}\n\n{_meter(levels.peak_db)}\n\n{verdict}"

    def table(self, takes: list) -> Any:
        import pandas as pd

        rows = [
            [
                i,
                t.name,
                self.t(f"record.source.{t.source}"),
                round(t.levels.duration_s, 1),
                round(t.levels.peak_db, 1),
                round(t.levels.rms_db, 1),
                ", ".join(self.t(f"record.issue_short.{c}") for c in t.levels.issues) or "✓",
            ]
            for i, t in enumerate(takes, start=1)
        ]
        return pd.DataFrame(rows, columns=[self.t(c) if "." in c else c for c in TABLE_COLUMNS])

    def refresh(self, project: Any) -> tuple:
        """(takes table, take picker, summary, delete button) from the workspace."""
        name = project_name(project, self.ui)
        takes = self.takes.list_takes(name) if name else []
        names = [t.name for t in takes]
        total = sum(t.levels.duration_s for t in takes)
        if not name:
            summary = self.t("record.need_project")
        elif not takes:
            summary = self.t("record.no_takes")
        else:
            summary = self.t("record.summary", count=len(takes), total=fmt_seconds(total))
            if total < 60:
                summary += "\n\n" + self.t("record.more_needed")
            summary += "\n\n" + self.t("record.next")
        pick = gr.update(choices=names, value=names[-1] if names else None)
        return self.table(takes), pick, summary, gr.update(interactive=bool(names))

    def analyse(self, mic_path: str | None) -> tuple:
        if not mic_path:
            return "", gr.update(interactive=False)
        levels = self.takes.measure_file(mic_path)
        return self.levels_text(levels), gr.update(interactive="silent" not in levels.issues)

    def keep(self, project: Any, mic_path: str | None) -> tuple:
        name = need_project(project, self.ui)
        if not mic_path:
            raise user_error(self.t("record.nothing_recorded"))
        take = self.takes.add_take(name, mic_path, source="mic", original_name=Path(mic_path).name)
        gr.Info(self.t("record.saved", take=take.name))
        return (None, self.t("record.saved", take=take.name), gr.update(interactive=False), *self.refresh(name))

    def retake(self) -> tuple:
        return None, self.t("record.retake_hint"), gr.update(interactive=False)

    def upload(self, project: Any, files: list | None) -> tuple:
        name = need_project(project, self.ui)
        added, failed = [], []
        for item in files or []:
            path = Path(getattr(item, "name", item))
            original = getattr(item, "orig_name", None) or path.name
            try:
                added.append(self.takes.add_take(name, path, source="upload", original_name=original).name)
            except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
                failed.append(str(exc))
        for message in failed:
            gr.Warning(message)
        if added:
            gr.Info(self.t("record.uploaded", count=len(added)))
        return (None, *self.refresh(name))

    def play(self, project: Any, take: str | None) -> str | None:
        name = project_name(project, self.ui)
        if not name or not take:
            return None
        return str(self.takes.get_take(name, take).path)

    def select_row(self, table: Any, evt: gr.SelectData) -> Any:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        try:
            value = table.iloc[row, 1] if hasattr(table, "iloc") else table[row][1]
        except (IndexError, KeyError, TypeError):
            return gr.skip()
        return gr.update(value=str(value))

    def delete(self, project: Any, take: str | None) -> tuple:
        name = need_project(project, self.ui)
        if not take:
            raise user_error(self.t("record.pick_first"))
        self.takes.delete_take(name, take)
        gr.Info(self.t("record.deleted", take=take))
        return (None, *self.refresh(name))


def _meter(peak_db: float) -> str:
    """A text level meter: 30 cells from −60 dBFS to 0 dBFS."""
    cells = int(round(max(0.0, min(60.0, peak_db + 60.0)) / 2.0))
    return "`" + "█" * cells + "·" * (30 - cells) + "`"


def default_script_language(ui: Any) -> str:
    lang = str(getattr(ui, "lang", None) or "en").split("-")[0].split("_")[0].lower()
    return lang if lang in READING_SCRIPTS else "en"


# ---- layout + wiring ----------------------------------------------------------------------------------
def build_record_tab(studio: Any, ui: Any) -> None:
    tab = gr.context.Context.block  # the gr.Tab this builder runs in
    h = RecordHandlers(studio, ui)
    project = ui.project
    widget(ui, gr.Markdown, value="@record.intro", elem_id="rec-intro")
    with gr.Row():
        with gr.Column(scale=3):
            lang = default_script_language(ui)
            script_lang = widget(
                ui,
                gr.Dropdown,
                choices=[(label, code) for code, label in SCRIPT_LANGUAGES.items()],
                value=lang,
                label="@record.script_language",
                elem_id="rec-script-lang",
            )
            script = gr.Markdown(h.script(lang), elem_id="rec-script")
        with gr.Column(scale=2):
            mic = widget(
                ui,
                gr.Audio,
                sources=["microphone"],
                type="filepath",
                label="@record.mic",
                format="wav",
                elem_id="rec-mic",
            )
            levels = gr.Markdown(h.t("record.mic_hint"), elem_id="rec-levels")
            with gr.Row():
                keep = widget(
                    ui, gr.Button, value="@record.keep", variant="primary", interactive=False, elem_id="rec-keep"
                )
                retake = widget(ui, gr.Button, value="@record.retake", elem_id="rec-retake")
    upload = widget(ui, gr.File, file_count="multiple", label="@record.upload", height=120, elem_id="rec-upload")
    widget(ui, gr.Markdown, value="@record.takes_title")
    table = gr.Dataframe(value=h.table([]), interactive=False, wrap=True, elem_id="rec-takes")
    with gr.Row():
        pick = widget(ui, gr.Dropdown, label="@record.pick", choices=[], scale=2, elem_id="rec-pick")
        player = widget(
            ui, gr.Audio, label="@record.play", type="filepath", interactive=False, scale=3, elem_id="rec-player"
        )
        delete = widget(
            ui, gr.Button, value="@record.delete", variant="stop", interactive=False, scale=1, elem_id="rec-delete"
        )
    summary = gr.Markdown(elem_id="rec-summary")

    listing = [table, pick, summary, delete]
    script_lang.change(guard(h.script), script_lang, script)
    mic.stop_recording(guard(h.analyse), mic, [levels, keep])
    mic.upload(guard(h.analyse), mic, [levels, keep])
    keep.click(guard(h.keep), [project, mic], [mic, levels, keep, *listing], api_name="record_keep_take")
    retake.click(h.retake, None, [mic, levels, keep])
    upload.upload(guard(h.upload), [project, upload], [upload, *listing], api_name="record_upload")
    pick.change(guard(h.play), [project, pick], player)
    table.select(guard(h.select_row), table, pick)
    delete.click(guard(h.delete), [project, pick], [player, *listing], api_name="record_delete_take")
    project.change(guard(h.refresh), project, listing)
    on_load(ui, h.refresh, project, listing)
    on_load(ui, h.script_for_ui, None, [script_lang, script])
    # a language switch: the idle hint and a "Saved as …" line are re-written (a level report stays until the next take)
    on_language(ui, lambda clip: gr.update() if clip else h.t("record.mic_hint"), mic, levels)
    if isinstance(tab, gr.Tab):  # coming back to the tab shows the texts in the current UI language
        tab.select(guard(h.refresh), project, listing, show_progress="hidden")
        tab.select(guard(h.script), script_lang, script, show_progress="hidden")

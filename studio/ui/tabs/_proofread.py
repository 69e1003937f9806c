"""Proofreading handlers of the Prepare tab: the clip table, the lint report, the picked reference, and the
edit / delete / merge / split / undo operations (all done by ``DatasetPrepService.proofreader``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.tabs._shared import fmt_seconds, need_project, project_name, tr, user_error

LIST_COLUMNS = (
    "#",
    "prepare.col.clip",
    "prepare.col.length",
    "prepare.col.text",
    "prepare.col.asr",
    "prepare.col.issues",
)
SEVERITY_ICON = {"error": "✖", "warning": "⚠", "info": "ℹ"}


class ProofreadHandlers:
    """Needs ``self.studio`` and ``self.ui`` (set by the Prepare tab's handler class)."""

    studio: Any
    ui: Any

    def t(self, key: str, **fmt: Any) -> str:
        return tr(self.ui, key, **fmt)

    def _need_project(self, project: Any) -> str:
        return need_project(project, self.ui)

    # ---- proofreading ----------------------------------------------------------------------------
    def dataset_view(self, project: Any) -> tuple:
        """(table rows, lint markdown, reference audio, reference markdown, next-step markdown)."""
        from studio.errors import DatasetError

        name = project_name(project, self.ui)
        empty = (self.frame([], LIST_COLUMNS), self.t("prepare.not_prepared"), None, "", "")
        if not name:
            return empty
        try:
            entries = self.studio.datasets.entries(name)
            report, pick = self.studio.datasets.lint(name)
            asr = self.studio.datasets.asr_confidence(name)
        except DatasetError:
            return empty
        durations = {c.name: c.duration_s for c in report.clips}
        rows = []
        for i, e in enumerate(entries):
            issues = [
                f"{SEVERITY_ICON.get(f.severity, '')} {self.lint_text(f.key, f.params, f.message)}"
                for f in report.for_clip(e.name)
                if f.severity != "info"
            ]
            heard = self.asr_cell(e, asr.get(e.name), report)
            rows.append([i + 1, e.name, round(durations.get(e.name, 0.0), 2), e.text, heard, " ".join(issues) or "✓"])
        ref_md = ""
        ref_audio = None
        if pick is not None:
            ref_audio = pick.audio_path
            notes = (
                pick.notes if len(pick.notes) == len(pick.reasons) else [{"key": "", "params": {}}] * len(pick.reasons)
            )
            reasons = self.lint_text("list_separator", {}, "; ").join(
                self.lint_text(n["key"], n["params"], r) for n, r in zip(notes, pick.reasons, strict=True)
            )
            ref_md = self.t("prepare.reference", clip=Path(pick.audio_path).name, text=pick.text, reasons=reasons)
        else:
            ref_md = self.t("prepare.no_reference")
        errors = len(report.errors)
        step = self.t("prepare.next_ok") if errors == 0 and entries else self.t("prepare.next_fix", errors=errors)
        return self.frame(rows, LIST_COLUMNS), self.lint_markdown(report), ref_audio, ref_md, step

    def lint_text(self, key: str, params: dict, english: str) -> str:
        """A lint message (finding, fix or reference reason) in the interface language: its key looked up as
        ``lint.<key>`` in the locale tables; ``english`` when the finding has no key (an older report)."""
        from studio.dataprep.lint_text import MESSAGES, render

        if key not in MESSAGES:
            return english
        i18n, lang = getattr(self.ui, "i18n", None), getattr(self.ui, "lang", "en")
        table = i18n.tables.get(lang, {}) if i18n is not None else {}
        return render(key, params, lambda k: table.get("lint." + k))

    def asr_cell(self, entry: Any, record: dict | None, report: Any) -> str:
        """The recogniser's column: "check" with the words in doubt, "checked" once the user saved the text, or
        how sure it was."""
        import math

        if any(f.code == "low_confidence" for f in report.for_clip(entry.name)):
            return self.t("prepare.asr.doubtful")
        if not record:
            return "–"
        if record.get("proofread") or str(record.get("text", "")).strip() != entry.text.strip():
            return self.t("prepare.asr.checked")
        return self.t("prepare.asr.sure", share=f"{math.exp(float(record.get('avg_logprob', -1.0))):.0%}")

    def frame(self, rows: list, columns: tuple[str, ...]) -> Any:
        import pandas as pd

        return pd.DataFrame(rows, columns=[self.t(c) if "." in c else c for c in columns])

    def lint_markdown(self, report: Any) -> str:
        lines = [
            self.t("prepare.lint_head", usable=f"{report.usable_minutes:.1f}", total=f"{report.total_minutes:.1f}")
        ]
        order = {"error": 0, "warning": 1, "info": 2}
        for f in sorted(report.findings, key=lambda f: order.get(f.severity, 3)):
            where = f"**{f.clip}**: " if f.clip else ""
            text, fix = self.lint_text(f.key, f.params, f.message), self.lint_text(f.fix_key, {}, f.fix)
            lines.append(f"- {SEVERITY_ICON.get(f.severity, '')} {where}{text} → _{fix}_")
        return "\n".join(lines)

    def clear_selection(self) -> tuple:
        return (
            -1,
            None,
            gr.update(value="", interactive=False),
            gr.update(maximum=1.0, value=0.5),
            self.t("prepare.pick_clip"),
        )

    def select(self, project: Any, table: Any, evt: gr.SelectData) -> tuple:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return self.show_clip(project, int(row))

    def show_clip(self, project: Any, index: int) -> tuple:
        name = self._need_project(project)
        entries = self.studio.datasets.entries(name)
        if not 0 <= index < len(entries):
            return self.clear_selection()
        entry = entries[index]
        from studio.audio.io import probe_audio

        length = probe_audio(entry.audio_path).duration_s
        label = self.t("prepare.selected", n=index + 1, clip=entry.name, length=fmt_seconds(length))
        return (
            index,
            str(entry.audio_path),
            gr.update(value=entry.text, interactive=True),
            gr.update(maximum=round(length, 2), value=round(length / 2, 2)),
            label,
        )

    def _after_op(self, name: str, index: int, message: str) -> tuple:
        gr.Info(message)
        return (*self.dataset_view(name), *self.show_clip(name, index))

    def _index(self, index: Any) -> int:
        if index is None or int(index) < 0:
            raise user_error(self.t("prepare.pick_clip"))
        return int(index)

    def save_text(self, project: Any, index: Any, text: str) -> tuple:
        name, i = self._need_project(project), self._index(index)
        self.studio.datasets.proofreader(name).edit_text(i, text or "")
        return self._after_op(name, i, self.t("prepare.saved_text"))

    def delete(self, project: Any, index: Any) -> tuple:
        name, i = self._need_project(project), self._index(index)
        self.studio.datasets.proofreader(name).delete(i)
        return self._after_op(name, i, self.t("prepare.deleted"))

    def merge(self, project: Any, index: Any) -> tuple:
        name, i = self._need_project(project), self._index(index)
        self.studio.datasets.proofreader(name).merge_next(i)
        return self._after_op(name, i, self.t("prepare.merged"))

    def split(self, project: Any, index: Any, at_s: float) -> tuple:
        name, i = self._need_project(project), self._index(index)
        self.studio.datasets.proofreader(name).split(i, float(at_s))
        return self._after_op(name, i, self.t("prepare.split_done"))

    def undo(self, project: Any, index: Any) -> tuple:
        name = self._need_project(project)
        op = self.studio.datasets.proofreader(name).undo()
        message = self.t("prepare.undone", op=op) if op else self.t("prepare.nothing_to_undo")
        return self._after_op(name, max(0, int(index if index is not None else 0)), message)

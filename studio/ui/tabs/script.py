"""Script tab: paste or upload a script, give each speaker a voice, render it in the background with a progress
bar (a ``gr.Timer`` polls :class:`~studio.services.scripts.desk.ScriptDesk`, so a reload or another browser finds
the render where it is), then listen to any line, edit and re-render it alone, compare two takes, and export.

UI only: parsing, rendering, takes and exports are the services' (``studio/services/scripts/``).
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.errors import StudioError
from studio.services.scripts.desk import ScriptDesk, make_cast, read_script, read_upload, voice_styles
from studio.services.scripts.records import ScriptError
from studio.services.scripts.state import EVERYONE, LineOverride, RenderSettings
from studio.ui.tabs import _script_view as view
from studio.ui.tabs._shared import tr

N = view.MAX_SPEAKERS


class ScriptHandlers:
    def __init__(self, studio: Any, ui: Any) -> None:
        self.studio, self.ui = studio, ui
        self.desk = ScriptDesk(studio.scripts_dir, studio.script_services)

    def t(self, key: str, **fmt: Any) -> str:
        return tr(self.ui, key, **fmt)

    # ---- the script and its cast -------------------------------------------------------------------------
    def voice_names(self) -> list[str]:
        return [v.name for v in self.studio.voices.list()]

    def style_update(self, voice: str | None, current: str | None = None):
        styles = voice_styles(self.studio.voices, voice) if voice in self.voice_names() else []
        choices = [(self.t("script.style_default"), ""), *[(s, s) for s in styles]]
        return gr.update(choices=choices, value=current if current in styles else "")

    def cast_updates(self, speakers: list[str], known: dict[str, tuple[str, str]]) -> list:
        """Rows, names, voices and styles of the cast (4 × N updates): each speaker keeps what it had, else the
        voice named like it."""
        names = self.voice_names()
        by_name = {n.casefold(): n for n in names}
        rows, labels, voices, styles = [], [], [], []
        for i in range(N):
            speaker = speakers[i] if i < len(speakers) else ""
            voice, style = known.get(speaker.casefold(), ("", ""))
            voice = voice if voice in names else by_name.get(speaker.casefold(), "")
            rows.append(gr.update(visible=bool(speaker)))
            labels.append(speaker)
            voices.append(gr.update(choices=names, value=voice or None))
            styles.append(self.style_update(voice, style))
        return [*rows, *labels, *voices, *styles]

    @staticmethod
    def _known(cast: tuple) -> dict[str, tuple[str, str]]:
        speakers, voices, styles = cast[:N], cast[N : 2 * N], cast[2 * N :]
        return {s.casefold(): (v or "", st or "") for s, v, st in zip(speakers, voices, styles) if s}

    def read(self, text: str, fmt: str, name: str, *cast: Any) -> list:
        if not (text or "").strip():
            return [gr.skip()] * (1 + 4 * N)
        try:
            script = read_script(text, fmt or "auto", (name or "script").strip() or "script")
        except ScriptError as exc:
            return [view.parse_error_text(self.ui, exc), *[gr.skip()] * (4 * N)]
        return [view.parsed_text(self.ui, script), *self.cast_updates(script.speakers, self._known(cast))]

    def upload(self, file: Any) -> tuple:
        if not file:
            return gr.skip(), gr.skip(), gr.skip()
        from pathlib import Path

        text, fmt = read_upload(file)
        return text, fmt, Path(str(file)).stem[:64]

    # ---- rendering -----------------------------------------------------------------------------------------
    def render(self, text, fmt, name, everyone, retries, pauses, check, seed, max_s, *cast) -> tuple:
        name = (name or "").strip() or "script"
        script = read_script(text, fmt or "auto", name)
        speakers, voices, styles = cast[:N], cast[N : 2 * N], cast[2 * N :]
        members = make_cast(zip(speakers, voices, styles), everyone or None)
        settings = RenderSettings(
            retries=int(retries or 0),
            seed=int(seed if seed is not None else -1),
            check=bool(check),
            pauses=pauses or "natural",
            max_sentence_s=float(max_s or 60),
        ).validated()
        self.desk.start(name, script, members, settings, source=(text, fmt or "auto"))
        choices = self.desk.names()
        return gr.update(choices=choices, value=name), self.t("script.started"), gr.Timer(active=True)

    def stop(self, name: str) -> str:
        self.desk.cancel(name)
        return self.t("script.stopping")

    def _status(self, name: str):
        try:
            return (self.desk.status(name), self.desk.running(name)) if name in self.desk.names() else (None, False)
        except StudioError:
            return None, False

    def refresh(self, name: str, line: Any, sig: str) -> list:
        """Timer tick (and after every change): repaint only when something changed; stop when nothing runs."""
        status, running = self._status(name)
        new = view.signature(status, running)
        if new == sig and sig:
            return [*[gr.skip()] * 4, gr.Timer(active=running), *[gr.skip()] * len(LINE_MEDIA)]
        choices = view.line_choices(status)
        keep = line if any(v == line for _, v in choices) else None
        lines = gr.update(choices=choices, value=keep)
        head = [view.progress_html(self.ui, status, running), view.table(self.ui, status), lines, new]
        return [*head, gr.Timer(active=running), *self.line_media(name, keep)]

    def open(self, name: str, line: Any) -> list:
        """Show render ``name`` as it was made (text, cast, settings) and where it is; nothing when it is new."""
        names = self.desk.names()
        name = (name or "").strip() or (names[0] if names else "script")
        picker = gr.update(choices=names, value=name)
        if name not in names:
            return [picker, *[gr.skip()] * (9 + 4 * N), *self.refresh(name, None, "")]
        source = self.desk.source(name) or ("", "auto")
        project = self.desk.project(name)
        settings = RenderSettings.from_dict(project["settings"])
        cast = project["cast"]
        everyone = cast.get(EVERYONE, {}).get("voice")
        known = {k: (v["voice"], v.get("style") or "") for k, v in cast.items() if k != EVERYONE}
        speakers = list(dict.fromkeys(line["speaker"] for line in project["script"]["lines"]))
        parsed = self.t("script.opened", lines=len(project["script"]["lines"]), n=len(speakers))
        values = [source[0], source[1], settings.retries, settings.pauses, settings.check, settings.seed]
        values += [settings.max_sentence_s, gr.update(choices=self.voice_names(), value=everyone), parsed]
        return [picker, *values, *self.cast_updates(speakers, known), *self.refresh(name, line, "")]

    def load(self, name: str, line: Any) -> list:
        """Page load: the render shown before the reload, else the most recent one."""
        names = self.desk.names()
        if (name or "").strip() not in names and names:
            name = names[0]
        return self.open(name, line)

    # ---- one line ------------------------------------------------------------------------------------------
    def _report(self, name: str, index: Any):
        status, _ = self._status(name)
        if status is None or index is None or not 0 <= int(index) < len(status.lines):
            return None
        return status.lines[int(index)]

    def line_media(self, name: str, index: Any) -> list:
        """The kept take and the two takes to compare (the kept one and the last other try)."""
        report = self._report(name, index)
        if report is None or not report.finished:
            empty = gr.update(choices=[], value=None)
            return [None, empty, empty, None, None, ""]
        choices = view.take_choices(self.ui, report)
        other = next((i for i in reversed(range(len(choices))) if i != report.chosen), report.chosen)
        renderer = self.desk.renderer(name)
        note = f"{report.symbol} {view.why(self.ui, report)}"
        if len(choices) < 2:
            note += " · " + self.t("script.one_take")
        return [
            str(renderer.line_audio(report.index)),
            gr.update(choices=choices, value=report.chosen),
            gr.update(choices=choices, value=other),
            str(renderer.take_audio(report.index, report.chosen)),
            str(renderer.take_audio(report.index, other)),
            note,
        ]

    def show_line(self, name: str, index: Any) -> list:
        report = self._report(name, index)
        if report is None:
            return ["", gr.update(value=""), gr.update(value=""), None, None, *self.line_media(name, None)]
        own = self.desk.line_settings(name, report.index)
        voices = [(self.t("script.line_voice_default"), ""), *[(v, v) for v in self.voice_names()]]
        voice = gr.update(choices=voices, value=own.voice or "")
        style = self.style_update(own.voice or report.voice, own.style)
        seed = own.seed if own.seed is not None else -1
        return [report.text, voice, style, own.speed, seed, *self.line_media(name, index)]

    def pick_row(self, evt: gr.SelectData) -> Any:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        return int(row)

    def rerender(self, name, index, text, voice, style, speed, seed) -> tuple:
        if index is None:
            raise StudioError(self.t("script.pick_line"))
        override = LineOverride(
            voice=voice or None,
            style=style or None,
            speed=float(speed) if speed else None,
            seed=int(seed) if seed is not None and int(seed) >= 0 else None,
        )
        self.desk.edit_line(name, int(index), text, override)
        return self.t("script.line_rendering", n=int(index) + 1), gr.Timer(active=True)

    def take_audio(self, name: str, index: Any, take: Any) -> Any:
        if index is None or take is None or self._report(name, index) is None:
            return None
        return str(self.desk.renderer(name).take_audio(int(index), int(take)))

    def keep(self, name: str, index: Any, take: Any) -> str:
        if index is None or take is None:
            raise StudioError(self.t("script.pick_line"))
        self.desk.choose_take(name, int(index), int(take))
        return self.t("script.kept", n=int(index) + 1, take=int(take) + 1)

    def export(self, name: str, fmt: str) -> str:
        return str(self.desk.export(name, fmt or "wav"))


LINE_MEDIA = ("player", "take_a", "take_b", "audio_a", "audio_b", "note")


def build_script_tab(studio: Any, ui: Any) -> None:
    from studio.ui.tabs._script_layout import lay_out, wire

    h = ScriptHandlers(studio, ui)
    wire(ui, h, lay_out(ui, h))

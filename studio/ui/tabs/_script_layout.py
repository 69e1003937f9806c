"""The Script tab's components and their events (``script.py`` holds the handlers).

Texts are keys of ``locales/script.<lang>.json`` given to :func:`~studio.ui.tabs._shared.widget` as ``"@key"``.
Every user action that changes the render hands work to the desk and turns the poll timer on; the timer repaints
only what changed and turns itself off when nothing runs.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services.scripts.desk import EXPORTS, UPLOADS
from studio.ui.tabs import _script_view as view
from studio.ui.tabs._shared import guard, on_language, on_load, widget

POLL_S = 1.0
FORMATS = [(f"script.fmt.{f}", f) for f in ("auto", "script", "txt", "md", "srt", "vtt")]
PAUSES = [(f"script.pauses.{p}", p) for p in ("natural", "audiobook", "fast")]


def _script_inputs(ui: Any, c: dict) -> None:
    widget(ui, gr.Markdown, value="@script.intro", elem_id="script-intro")
    with gr.Row():
        with gr.Column(scale=3):
            c["text"] = widget(
                ui,
                gr.Textbox,
                lines=9,
                max_lines=30,
                label="@script.text",
                placeholder="@script.placeholder",
                elem_id="script-text",
            )
            with widget(ui, gr.Accordion, label="@script.help_title", open=False):
                widget(ui, gr.Markdown, value="@script.help")
        with gr.Column(scale=2):
            c["upload"] = widget(
                ui, gr.File, label="@script.upload", file_types=list(UPLOADS), type="filepath", elem_id="script-upload"
            )
            c["fmt"] = widget(
                ui, gr.Dropdown, choices=FORMATS, value="auto", label="@script.format", elem_id="script-format"
            )
            c["name"] = widget(
                ui,
                gr.Dropdown,
                choices=[],
                value="script",
                allow_custom_value=True,
                label="@script.name",
                info="@script.name_info",
                elem_id="script-name",
            )
            c["read"] = widget(ui, gr.Button, value="@script.read", elem_id="script-read")
    c["parsed"] = gr.Markdown(elem_id="script-parsed")


def _cast(ui: Any, c: dict, n: int) -> None:
    widget(ui, gr.Markdown, value="@script.cast_title")
    for key in ("rows", "speakers", "voices", "styles"):
        c[key] = []
    for i in range(n):
        with gr.Row(visible=False, equal_height=True) as row:
            c["rows"].append(row)
            c["speakers"].append(
                widget(
                    ui, gr.Textbox, label="@script.speaker", interactive=False, scale=1, elem_id=f"script-speaker-{i}"
                )
            )
            c["voices"].append(
                widget(ui, gr.Dropdown, choices=[], label="@script.voice", scale=2, elem_id=f"script-voice-{i}")
            )
            c["styles"].append(
                widget(ui, gr.Dropdown, choices=[], label="@script.style", scale=2, elem_id=f"script-style-{i}")
            )
    c["everyone"] = widget(
        ui, gr.Dropdown, choices=[], label="@script.everyone", info="@script.everyone_info", elem_id="script-everyone"
    )


def _settings(ui: Any, c: dict) -> None:
    with widget(ui, gr.Accordion, label="@script.settings", open=True):
        with gr.Row():
            c["retries"] = widget(
                ui, gr.Slider, minimum=0, maximum=10, step=1, value=2, label="@script.retries", elem_id="script-retries"
            )
            c["pauses"] = widget(
                ui, gr.Radio, choices=PAUSES, value="natural", label="@script.pauses", elem_id="script-pauses"
            )
        with gr.Row():
            c["check"] = widget(
                ui, gr.Checkbox, value=True, label="@script.check", info="@script.check_info", elem_id="script-check"
            )
            c["seed"] = widget(
                ui,
                gr.Number,
                value=-1,
                precision=0,
                label="@script.seed",
                info="@script.seed_info",
                elem_id="script-seed",
            )
            c["max_s"] = widget(
                ui,
                gr.Slider,
                minimum=1,
                maximum=60,
                step=1,
                value=60,
                label="@script.max_sentence",
                elem_id="script-max-s",
            )
    with gr.Row():
        c["render"] = widget(ui, gr.Button, value="@script.render", variant="primary", elem_id="script-render")
        c["stop"] = widget(ui, gr.Button, value="@script.stop", variant="stop", elem_id="script-stop")
    c["progress"] = gr.HTML(elem_id="script-progress")
    c["table"] = gr.Dataframe(value=view.table(ui, None), interactive=False, wrap=True, elem_id="script-lines")


def _line_panel(ui: Any, c: dict) -> None:
    widget(ui, gr.Markdown, value="@script.line_title")
    with gr.Row():
        c["line"] = widget(ui, gr.Dropdown, choices=[], label="@script.line", scale=3, elem_id="script-line")
        c["player"] = widget(
            ui, gr.Audio, label="@script.play", type="filepath", interactive=False, scale=2, elem_id="script-player"
        )
    c["note"] = gr.Markdown(elem_id="script-line-note")
    c["line_text"] = widget(ui, gr.Textbox, label="@script.line_text", lines=2, elem_id="script-line-text")
    with gr.Row():
        c["line_voice"] = widget(ui, gr.Dropdown, choices=[], label="@script.line_voice", elem_id="script-line-voice")
        c["line_style"] = widget(ui, gr.Dropdown, choices=[], label="@script.line_style", elem_id="script-line-style")
        c["line_speed"] = widget(
            ui,
            gr.Number,
            value=None,
            label="@script.line_speed",
            info="@script.line_speed_info",
            elem_id="script-line-speed",
        )
        c["line_seed"] = widget(
            ui,
            gr.Number,
            value=-1,
            precision=0,
            label="@script.line_seed",
            info="@script.line_seed_info",
            elem_id="script-line-seed",
        )
    c["rerender"] = widget(ui, gr.Button, value="@script.rerender", variant="primary", elem_id="script-rerender")
    widget(ui, gr.Markdown, value="@script.ab_title")
    with gr.Row():
        for side in ("a", "b"):
            with gr.Column():
                c[f"take_{side}"] = widget(
                    ui, gr.Dropdown, choices=[], label=f"@script.take_{side}", elem_id=f"script-take-{side}"
                )
                c[f"audio_{side}"] = widget(
                    ui,
                    gr.Audio,
                    label=f"@script.take_{side}",
                    type="filepath",
                    interactive=False,
                    elem_id=f"script-audio-{side}",
                )
                c[f"keep_{side}"] = widget(ui, gr.Button, value=f"@script.keep_{side}", elem_id=f"script-keep-{side}")
    c["message"] = gr.Markdown(elem_id="script-message")


def _export(ui: Any, c: dict) -> None:
    widget(ui, gr.Markdown, value="@script.export_title")
    with gr.Row(equal_height=True):
        c["export_fmt"] = widget(
            ui,
            gr.Radio,
            choices=[(f"script.export.{f}", f) for f in EXPORTS],
            value="wav",
            label="@script.export_as",
            scale=3,
            elem_id="script-export-format",
        )
        c["export"] = widget(ui, gr.Button, value="@script.export", scale=1, elem_id="script-export")
    c["file"] = widget(ui, gr.File, label="@script.file", interactive=False, elem_id="script-file")


def lay_out(ui: Any, h: Any) -> dict:
    """Every component of the tab, by name (lists for the per-speaker rows)."""
    c: dict = {}
    _script_inputs(ui, c)
    _cast(ui, c, view.MAX_SPEAKERS)
    _settings(ui, c)
    _line_panel(ui, c)
    _export(ui, c)
    c["sig"] = gr.State("")
    c["timer"] = gr.Timer(POLL_S, active=False)
    return c


def wire(ui: Any, h: Any, c: dict) -> None:
    cast = [*c["speakers"], *c["voices"], *c["styles"]]
    cast_out = [*c["rows"], *cast]
    media = [c["player"], c["take_a"], c["take_b"], c["audio_a"], c["audio_b"], c["note"]]
    status_out = [c["progress"], c["table"], c["line"], c["sig"], c["timer"], *media]
    line_out = [c["line_text"], c["line_voice"], c["line_style"], c["line_speed"], c["line_seed"], *media]
    settings = [c["retries"], c["pauses"], c["check"], c["seed"], c["max_s"]]
    open_out = [c["name"], c["text"], c["fmt"], *settings, c["everyone"], c["parsed"], *cast_out, *status_out]
    name, line = c["name"], c["line"]

    def repaint(render_name: str, index: Any) -> list:
        return h.refresh(render_name, index, "")

    read_in = [c["text"], c["fmt"], name, *cast]
    c["upload"].upload(guard(h.upload), c["upload"], [c["text"], c["fmt"], name]).then(
        guard(h.read), read_in, [c["parsed"], *cast_out]
    )
    c["read"].click(guard(h.read), read_in, [c["parsed"], *cast_out])
    for voice, style in zip(c["voices"], c["styles"]):
        voice.input(guard(h.style_update), [voice, style], style)
    c["line_voice"].input(guard(h.style_update), [c["line_voice"], c["line_style"]], c["line_style"])
    c["render"].click(
        guard(h.render), [c["text"], c["fmt"], name, c["everyone"], *settings, *cast], [name, c["progress"], c["timer"]]
    )
    c["stop"].click(guard(h.stop), name, c["progress"])
    c["timer"].tick(guard(h.refresh), [name, line, c["sig"]], status_out, show_progress="hidden")
    name.input(guard(h.open), [name, line], open_out)
    line.input(guard(h.show_line), [name, line], line_out)
    c["table"].select(h.pick_row, None, line).then(guard(h.show_line), [name, line], line_out)
    line_in = [name, line, c["line_text"], c["line_voice"], c["line_style"], c["line_speed"], c["line_seed"]]
    c["rerender"].click(guard(h.rerender), line_in, [c["message"], c["timer"]])
    for side in ("a", "b"):
        take = c[f"take_{side}"]
        take.input(guard(h.take_audio), [name, line, take], c[f"audio_{side}"])
        c[f"keep_{side}"].click(guard(h.keep), [name, line, take], c["message"]).then(
            guard(repaint), [name, line], status_out
        )
    c["export"].click(guard(h.export), [name, c["export_fmt"]], c["file"])
    on_load(ui, h.load, [name, line], open_out)
    on_language(ui, repaint, [name, line], status_out)
    on_language(ui, h.read, read_in, [c["parsed"], *cast_out])
    on_language(ui, lambda: "", None, c["message"])

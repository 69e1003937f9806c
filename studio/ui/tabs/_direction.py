"""Synthesize tab: directing the voice — a style clip apart from the timbre, a weighted timbre mix, pauses by
punctuation.

The take service already carries these (``TakeSettings.style_reference``/``timbre_mix``/``pauses``) into the
request and keeps them with each take; this module only offers them: the style clip is one of the selected
voice's tagged references ("calm", "excited"), the timbre mix up to three clips (the library voices' references
or uploads) with a weight each, and the pauses a preset whose seconds per mark can be edited. Nothing set here
gives today's take: one reference for both, one pause between sentences.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from studio.inference.pauses import PRESETS, PauseMap
from studio.services.takes import ZERO_SHOT
from studio.ui.context import UIContext

SAME_AS_REFERENCE = "Same as the reference"
NO_CLIP = "No clip"
NO_PAUSE_MAP = "none"
CUSTOM = "custom"
PAUSE_CHOICES = [
    ("None: one pause between sentences", NO_PAUSE_MAP),
    ("Natural", "natural"),
    ("Audiobook (unhurried)", "audiobook"),
    ("Fast (tight, for dialogue)", "fast"),
    ("My own (edited below)", CUSTOM),
]
MARK_LABELS = {  # PauseMap field → label
    "comma": "Comma , ; :",
    "full_stop": "Full stop .",
    "question": "Question or exclamation ? !",
    "ellipsis": "Ellipsis …",
    "dash": "Dash —",
    "paragraph": "Paragraph break (blank line)",
}
MARKS = [f.name for f in fields(PauseMap)]
TIMBRE_ROWS = 3


def build_direction(ui: UIContext) -> dict:
    """The controls, in an accordion below the reference clip; returns them by name for the wiring."""
    import gradio as gr

    c: dict = {}
    with ui.tr(gr.Accordion("Directing the voice", open=False, elem_id="synth-direction")):
        c["style"] = ui.tr(
            gr.Dropdown(
                label="Style clip",
                info="Delivery (pace, emotion) from one of the voice's tagged reference clips; the voice colour "
                "stays the reference's.",
                choices=[(ui.t(SAME_AS_REFERENCE), "")],
                value="",
                elem_id="synth-style",
            ),
            choices=False,  # listed by style_choices in the current language
        )
        with ui.tr(gr.Accordion("Timbre mix (optional)", open=False, elem_id="synth-timbre")):
            ui.tr(
                gr.Markdown(
                    "Mix the voice colour of up to three clips. Weights are relative: 1 and 3 give a quarter and "
                    "three quarters. An uploaded clip replaces the picked one in its row.",
                    elem_classes=["studio-caption"],
                )
            )
            c["timbre"] = []
            for row in range(TIMBRE_ROWS):
                with gr.Row(equal_height=False):
                    clip = ui.tr(
                        gr.Dropdown(
                            label="Clip from your voices",
                            choices=[(ui.t(NO_CLIP), "")],
                            value="",
                            elem_id=f"synth-timbre-clip-{row}",
                            scale=3,
                        ),
                        choices=False,
                    )
                    upload = ui.tr(gr.Audio(label="Or upload a clip", type="filepath", sources=["upload"], scale=3))
                    weight = ui.tr(gr.Slider(0, 3, 1, step=0.05, label="Weight", scale=2))
                c["timbre"] += [clip, upload, weight]
        c["preset"] = ui.tr(
            gr.Dropdown(
                label="Pauses by punctuation",
                info="Silence after each kind of mark, inside and between sentences.",
                choices=PAUSE_CHOICES,
                value=NO_PAUSE_MAP,
                elem_id="synth-pauses",
            )
        )
        with ui.tr(gr.Accordion("Edit the pauses (seconds)", open=False, elem_id="synth-pauses-edit")):
            with gr.Row():
                natural = PRESETS["natural"]
                c["marks"] = [
                    ui.tr(
                        gr.Number(
                            getattr(natural, mark), minimum=0, maximum=5, step=0.05,
                            label=MARK_LABELS[mark], elem_id=f"synth-pause-{mark}", min_width=120,
                        )
                    )
                    for mark in MARKS
                ]  # fmt: skip
    return c


class DirectionHandlers:
    """The choices the controls offer and the take settings they make."""

    def __init__(self, studio, ui: UIContext) -> None:
        self.studio, self.ui = studio, ui

    def _tagged(self, voice: str | None) -> list[tuple[str, dict]]:
        """(label, clip meta + path) of the voice's reference clips besides its default one."""
        if not voice or voice == ZERO_SHOT:
            return []
        library = self.studio.voices
        clips = library.reference_clips(library.get(voice))[1:]  # the first is the reference itself
        out = []
        for path, meta in clips:
            label = meta["emotion"] or (f"“{_shorten(meta['text'], 30)}”" if meta["text"] else path.stem)
            out.append((label, {**meta, "path": str(path)}))
        return out

    def style_choices(self, voice: str | None, current: str | None):
        """The selected voice's tagged clips, labelled by their tag; "same as the reference" first."""
        import gradio as gr

        choices = [(self.ui.t(SAME_AS_REFERENCE), "")] + [(label, meta["path"]) for label, meta in self._tagged(voice)]
        value = current if current in {v for _, v in choices} else ""
        return gr.update(choices=choices, value=value)

    def timbre_choices(self, *current: str | None):
        """Every library voice's reference clips ("alice · reference", "alice · calm") for each mix row."""
        import gradio as gr

        choices = [(self.ui.t(NO_CLIP), "")]
        library = self.studio.voices
        for info in library.list():
            for index, (path, meta) in enumerate(library.reference_clips(info)):
                tag = meta["emotion"] or (self.ui.t("reference") if index == 0 else path.stem)
                choices.append((f"{info.name} · {tag}", str(path)))
        values = {v for _, v in choices}
        return tuple(gr.update(choices=choices, value=c if c in values else "") for c in current)

    @staticmethod
    def preset_seconds(preset: str | None):
        """A preset fills the seconds per mark (they stay as they are for "none" and "my own")."""
        import gradio as gr

        if preset not in PRESETS:
            return tuple(gr.update() for _ in MARKS)
        values = PRESETS[preset].to_dict()
        return tuple(gr.update(value=values[mark]) for mark in MARKS)

    def settings(self, voice: str | None, style: str | None, *rest) -> dict:
        """The :class:`TakeSettings` fields of the controls: ``rest`` = the timbre rows (clip, upload, weight) ×
        3, the pause preset, then one number per mark."""
        timbre, preset, seconds = rest[: 3 * TIMBRE_ROWS], rest[3 * TIMBRE_ROWS], rest[3 * TIMBRE_ROWS + 1 :]
        out: dict = {"timbre_mix": self._mix(timbre), "pauses": _pauses(preset, seconds)}
        if style:
            meta = next((m for _, m in self._tagged(voice) if m["path"] == style), None)
            if meta is None:  # the voice changed since the clip was picked: say so rather than use another
                from studio.errors import StudioError

                raise StudioError(self.ui.t("The style clip is not one of this voice's clips; pick it again."))
            out |= {"style_reference": style, "style_ref_text": meta["text"], "style_ref_lang": meta["language"]}
        return out

    def _mix(self, rows) -> list[tuple[str, float]]:
        """(clip, weight) per filled row; an upload is copied into the take store so the take keeps it."""
        mix = []
        for i in range(0, len(rows), 3):
            clip, upload, weight = rows[i : i + 3]
            if upload:
                clip = str(self.studio.takes.store.keep_reference(Path(upload)))
            if clip:
                mix.append((clip, float(1.0 if weight is None else weight)))
        return mix


def _pauses(preset: str | None, seconds) -> dict[str, float] | None:
    if not preset or preset == NO_PAUSE_MAP:
        return None
    if preset in PRESETS:
        return PRESETS[preset].to_dict()
    return PauseMap(**{m: float(s or 0.0) for m, s in zip(MARKS, seconds, strict=True)}).to_dict()


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wire_direction(d: DirectionHandlers, ui: UIContext, c: dict, voice) -> None:
    """Refresh the style clips with the voice, the timbre clips with the library; a preset fills the seconds, an
    edited second makes the map "my own"."""
    from studio.ui.errors import guarded

    quick = {"show_progress": "hidden", "queue": False}
    clips = c["timbre"][0::3]
    voice.change(guarded(d.style_choices), [voice, c["style"]], c["style"], **quick)
    c["preset"].input(guarded(d.preset_seconds), c["preset"], c["marks"], **quick)
    for box in c["marks"]:
        box.input(lambda: CUSTOM, None, c["preset"], **quick)
    if ui.library_changed is not None:
        ui.library_changed.change(guarded(d.timbre_choices), clips, clips)
    for hooks in (ui.on_load, ui.on_language):
        hooks(d.style_choices, [voice, c["style"]], c["style"])
        hooks(d.timbre_choices, clips, clips)


def direction_inputs(c: dict) -> list:
    """The components :meth:`DirectionHandlers.settings` reads after the voice, in its order."""
    return [c["style"], *c["timbre"], c["preset"], *c["marks"]]

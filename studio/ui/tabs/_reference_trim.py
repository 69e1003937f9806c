"""The Synthesize tab's reference check and trimmer: a clip outside 3–10 s is named as soon as it is chosen, and a
long one can be cut in the page — at the engine's own quiet point, or to a span picked with two sliders. The cut
clip replaces the reference in the player, so it can be heard before Generate.

Also the take deletion that asks first. Handlers are plain functions over :mod:`studio.services.reference_clip`
and the take store; ``build_*`` only place components and wire events.
"""

from __future__ import annotations

from studio.errors import StudioError
from studio.services.reference_clip import MAX_REFERENCE_S, MIN_REFERENCE_S, check_reference, cut_reference
from studio.ui.context import UIContext
from studio.ui.errors import guarded, info, present


def reference_problem(ui: UIContext, ref_audio: str | None) -> str | None:
    """Why the chosen clip cannot be a reference (said before Generate), or None when it can."""
    if not ref_audio:
        return None
    try:
        check = check_reference(ref_audio)
    except (StudioError, OSError) as exc:
        return present(exc)[1]
    if check.ok:
        return None
    key = (
        "The reference clip is {s:.1f} s long; it must be 3–10 s. Trim it below (at a quiet point, or pick a span)."
        if check.too_long
        else "The reference clip is {s:.1f} s long; it must be 3–10 s. Choose a longer clip (a full sentence)."
    )
    return ui.t(key, s=check.duration_s)


class TrimHandlers:
    def __init__(self, studio, ui: UIContext) -> None:
        self.studio, self.ui = studio, ui

    @property
    def folder(self):
        return self.studio.workspace_root / "takes" / "trimmed"

    def controls(self, ref_audio: str | None):
        """Show the trimmer (sliders over the whole clip, end at the auto-trim point) only for a too-long clip."""
        import gradio as gr

        try:
            check = check_reference(ref_audio) if ref_audio else None
        except (StudioError, OSError):
            check = None
        if check is None or not check.too_long:
            return gr.update(visible=False), gr.update(), gr.update()
        top = round(check.duration_s, 1)
        return (
            gr.update(visible=True),
            gr.update(maximum=top, value=0.0),
            gr.update(maximum=top, value=round(check.auto_end_s, 1)),
        )

    def auto(self, ref_audio: str | None):
        """The engine's auto-trim: the first 10 s, cut at the quietest point of the last second."""
        if not ref_audio:
            raise StudioError(self.ui.t("Add a reference clip first."))
        check = check_reference(ref_audio)
        end = check.auto_end_s if check.too_long else check.duration_s
        return self._cut(ref_audio, 0.0, end)

    def span(self, ref_audio: str | None, start: float, end: float):
        if not ref_audio:
            raise StudioError(self.ui.t("Add a reference clip first."))
        return self._cut(ref_audio, float(start or 0), float(end or 0))

    def _cut(self, ref_audio: str, start: float, end: float) -> str:
        path = cut_reference(ref_audio, start, end, self.folder)
        info(self.ui.t("Reference cut to {start:.1f}–{end:.1f} s: listen to it above.", start=start, end=end))
        return str(path)


def build_reference_trim(studio, ui: UIContext, ref_audio) -> None:
    """The trimmer below the reference player (hidden until a clip longer than 10 s is chosen)."""
    import gradio as gr

    h = TrimHandlers(studio, ui)
    with gr.Group(visible=False, elem_id="synth-trim") as group:
        ui.tr(
            gr.Markdown(
                f"Cut a {MIN_REFERENCE_S:g}–{MAX_REFERENCE_S:g} s piece of clear speech out of this clip.",
                elem_classes=["studio-caption"],
            )
        )
        with gr.Row():
            start = ui.tr(gr.Slider(0, 30, 0, step=0.1, label="Start (seconds)", elem_id="synth-trim-start"))
            end = ui.tr(gr.Slider(0, 30, 10, step=0.1, label="End (seconds)", elem_id="synth-trim-end"))
        with gr.Row():
            auto_btn = ui.tr(gr.Button("Trim at a quiet point (first 10 s)", elem_id="synth-trim-auto"))
            span_btn = ui.tr(gr.Button("Use this span", elem_id="synth-trim-span"))
    ref_audio.change(guarded(h.controls), ref_audio, [group, start, end], show_progress="hidden")
    auto_btn.click(guarded(h.auto), ref_audio, ref_audio, show_progress="hidden")
    span_btn.click(guarded(h.span), [ref_audio, start, end], ref_audio, show_progress="hidden")


def build_delete_confirmation(ui: UIContext) -> dict:
    """The hidden "Delete this take?" row (place it under the Delete button); wire it with :func:`wire_delete`."""
    import gradio as gr

    with gr.Row(visible=False, elem_id="synth-delete-confirm") as row:
        question = gr.Markdown(elem_id="synth-delete-question")
        yes = ui.tr(gr.Button("Delete", variant="stop", elem_id="synth-delete-yes", scale=0, min_width=100))
        no = ui.tr(gr.Button("Cancel", elem_id="synth-delete-no", scale=0, min_width=100))
    return {"row": row, "question": question, "yes": yes, "no": no}


def wire_delete(ui: UIContext, parts: dict, del_btn, take_pick, delete_fn, outputs: list) -> None:
    """The "Delete take" button asks first; nothing is removed before the user presses Delete in the question row."""
    import gradio as gr

    def ask(take_id: str | None):
        if not take_id:
            raise StudioError(ui.t("Pick a take in the list first."))
        return gr.update(visible=True), ui.t("Delete this take for good? Its audio file is removed.")

    def confirm(take_id: str | None):
        return (*delete_fn(take_id), gr.update(visible=False))

    row = parts["row"]
    del_btn.click(guarded(ask), take_pick, [row, parts["question"]], show_progress="hidden")
    parts["yes"].click(guarded(confirm), take_pick, [*outputs, row], show_progress="hidden")
    parts["no"].click(lambda: gr.update(visible=False), None, row, queue=False, show_progress="hidden")

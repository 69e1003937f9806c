"""Models & Settings, "Speech recognition": pick the Whisper model that transcription and take checks use, and
download a larger one (through the same resumable download as the base models, from the source chosen above).

The choice is kept in the workspace (``studio.services.asr_choice``); a model that is not downloaded yet, or
only in part, is never chosen: the page says so and offers the Download button.
"""

from __future__ import annotations

import threading
from typing import Any

from studio.ui.errors import guarded, info
from studio.ui.tabs._shared import widget


class ASRModelHandlers:
    def __init__(self, studio, ui, endpoint) -> None:
        self.studio, self.ui, self.endpoint = studio, ui, endpoint  # endpoint(source, custom) -> URL

    def _choices(self) -> list[tuple[str, str]]:
        t = self.ui.t
        out = []
        for s in self.studio.asr.states():
            state = t("settings.asr_state.present" if s.present else "settings.asr_state.missing")
            if s.partial:
                state = t("settings.asr_state.partial")
            size = s.model.name.removeprefix("whisper-")
            out.append((t("settings.asr_choice", size=size, mb=s.model.size_mb, state=state), s.model.name))
        return out

    def _in_use(self) -> str:
        return self.ui.t("settings.asr_in_use", size=self.studio.asr.name.removeprefix("whisper-"))

    def view(self):
        """The picker (current choice selected) and the status line."""
        import gradio as gr

        return gr.update(choices=self._choices(), value=self.studio.asr.name), self._in_use()

    def pick(self, name: str | None) -> str:
        """Use a downloaded model at once; for one that is not here, say how big it is and that Download gets it."""
        from studio.errors import ASRModelMissingError
        from studio.pretrained import asr_model

        if not name or name == self.studio.asr.name:
            return self._in_use()
        try:
            self.studio.asr.choose(name)
        except ASRModelMissingError:
            model = asr_model(name)
            return self.ui.t("settings.asr_not_here", size=name.removeprefix("whisper-"), mb=model.size_mb)
        return self._in_use()

    def download(self, name: str, source: str, custom: str, progress: Any = None):
        """Fetch ``name`` in a thread (progress every half second), then choose it."""
        url = self.endpoint(source, custom)
        state: dict[str, Any] = {"done": 0, "total": 0, "error": None}

        def on_progress(file: str, done: int, total: int) -> None:
            state.update(file=file, done=done, total=total)

        def work() -> None:
            try:
                self.studio.asr.download(name, endpoint=url, on_progress=on_progress)
            except Exception as exc:  # noqa: BLE001 - handed to the UI thread below
                state["error"] = exc

        worker = threading.Thread(target=work, name="asr-download", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            if progress is not None and state["total"]:
                msg = self.ui.t(
                    "Downloading {file}: {mb:.0f} of {total:.0f} MB",
                    file=state.get("file", "…"),
                    mb=state["done"] / 2**20,
                    total=state["total"] / 2**20,
                )
                progress(state["done"] / state["total"], desc=msg)
        if state["error"] is not None:
            raise state["error"]
        info(self.ui.t("Download finished."))
        return self.view()


def build_asr_section(studio, ui, endpoint, source, custom) -> None:
    """The section's components and events (``source``/``custom``: the download-source inputs above it)."""
    import gradio as gr

    h = ASRModelHandlers(studio, ui, endpoint)
    widget(ui, gr.Markdown, value="@settings.asr_title")
    widget(ui, gr.Markdown, value="@settings.asr_help", elem_classes=["studio-caption"])
    with gr.Row(equal_height=True):
        picker = widget(ui, gr.Dropdown, label="@settings.asr_model", choices=[], elem_id="asr-model", scale=3)
        fetch = widget(ui, gr.Button, value="@settings.asr_download", elem_id="asr-download", scale=1)
    status = gr.Markdown(elem_id="asr-status")

    def download(name, source_value, custom_value, progress=gr.Progress()):
        return h.download(name, source_value, custom_value, progress=progress)

    picker.input(guarded(h.pick), picker, status, show_progress="hidden")
    fetch.click(guarded(download), [picker, source, custom], [picker, status], concurrency_id="download")
    ui.on_load(h.view, None, [picker, status])
    ui.on_language(h.view, None, [picker, status])

"""Models & Settings tab: which base files are present, download them (Hugging Face or a mirror) with progress
and a Stop button, the compute device, and the UI language (saved in the workspace, not taken from the OS)."""

from __future__ import annotations

import os
import platform
import threading
from html import escape

from studio.pretrained import DEFAULT_ENDPOINT
from studio.ui.context import UIContext
from studio.ui.errors import guarded, info
from studio.ui.i18n import LANGUAGES
from studio.ui.tabs._asr_models import build_asr_section

MIRROR_ENDPOINT = "https://hf-mirror.com"
SOURCES = [("Hugging Face (huggingface.co)", "hf"), ("Mirror (hf-mirror.com)", "mirror"), ("Other address", "custom")]
HEADERS = ["File", "What it is for", "Versions", "Present"]
BASE_CHOICES = [("v2", "v2"), ("v2Pro", "v2Pro"), ("v2ProPlus (best)", "v2ProPlus")]
PRECISION_CHOICES = [
    ("Automatic (fastest that passes the quality checks)", "auto"),
    ("Exact (fp32, matches upstream)", "fp32"),
    ("bf16 (16-bit weights)", "bf16"),
    ("int8 (8-bit weights, fastest on most CPUs)", "int8"),
]


class _Cancelled(Exception):
    """Raised inside the download thread when the user pressed Stop (the .part file stays, to resume)."""


class SettingsHandlers:
    def __init__(self, studio, ui: UIContext) -> None:
        self.studio, self.ui = studio, ui

    def status(self):
        """The file table (plain HTML: every row shows, nothing to scroll inside) and the summary line."""
        from studio.pretrained import ALL_FILES, BASE_VERSIONS

        t = self.ui.t
        assets = self.studio.pretrained
        rows = [
            [
                f.path,
                t(f.purpose),
                t("all") if f.versions == BASE_VERSIONS else ", ".join(f.versions),
                "✓" if present else ("✗" if f.required else t("optional")),
            ]
            for f, present in assets.status(ALL_FILES)
        ]
        head = "".join(f"<th>{escape(t(h))}</th>" for h in HEADERS)
        body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        table = f'<table class="studio-files"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        missing = [] if assets.best_base() else assets.missing()  # v2's files when no base is complete
        if missing:
            summary = t("{n} required file(s) missing. Choose a source and press Download.", n=len(missing))
        else:
            summary = t("All required base files are present.")
        best = assets.best_base()
        complete = [v for v in BASE_VERSIONS if assets.has_base(v)]
        bases = (
            t("Complete bases: {versions}; training starts from {best}.", versions=", ".join(complete), best=best)
            if best
            else t("No base version is complete yet.")
        )
        root = t("Folder in use: {path}", path=f"`{assets.root}`")
        return table, f"{summary}  \n{bases}  \n{root}"

    def use_folder(self, folder: str):
        """Switch to an existing models folder (checked first), remember it in the workspace settings."""
        path = self.studio.use_pretrained(folder or "")
        self.ui.prefs.set("pretrained_dir", str(path))
        info(self.ui.t("Using the base models in {path}.", path=path.name))
        return (*self.status(), self.paths(), str(path))

    @staticmethod
    def endpoint(source: str, custom: str) -> str:
        from studio.errors import StudioError

        if source == "mirror":
            return MIRROR_ENDPOINT
        if source == "custom":
            url = (custom or "").strip().rstrip("/")
            if not url.startswith(("http://", "https://")):
                raise StudioError("Enter the mirror's address, starting with https://")
            return url
        return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT) if source == "env" else DEFAULT_ENDPOINT

    def download(self, source: str, custom: str, progress=None, version: str = "v2"):
        """Fetch the missing files of base ``version`` in a thread; report progress every half second; Stop
        cancels it."""
        from studio.pretrained import download, files_for

        endpoint = self.endpoint(source, custom)
        files = files_for(version or "v2")
        if not self.studio.pretrained.missing(files, required_only=False):
            info(self.ui.t("All base files are already present."))
            yield self.status()
            return
        state = {"file": "", "done": 0, "total": 0, "error": None}
        stop = threading.Event()

        def on_progress(name: str, done: int, total: int) -> None:
            if stop.is_set():
                raise _Cancelled()
            state.update(file=name, done=done, total=total)

        def work() -> None:
            try:
                download(self.studio.pretrained.root, files, endpoint=endpoint, on_progress=on_progress)
            except _Cancelled:
                pass
            except Exception as exc:  # noqa: BLE001 - handed to the UI thread below
                state["error"] = exc

        worker = threading.Thread(target=work, name="pretrained-download", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.5)
                mb, total = state["done"] / 2**20, state["total"] / 2**20
                msg = self.ui.t(
                    "Downloading {file}: {mb:.0f} of {total:.0f} MB", file=state["file"] or "…", mb=mb, total=total
                )
                if progress is not None and state["total"]:
                    progress(state["done"] / state["total"], desc=msg)
                table, _ = self.status()
                yield table, msg
        finally:
            stop.set()  # also when the user pressed Stop: the thread ends at its next block
        if state["error"] is not None:
            raise state["error"]
        info(self.ui.t("Download finished."))
        yield self.status()

    def device(self) -> str:
        import torch

        t = self.ui.t
        lines = [
            f"Python {platform.python_version()} · {platform.system()} {platform.machine()} · "
            f"{os.cpu_count()} CPU cores · PyTorch {torch.__version__}"
        ]
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                lines.append(f"GPU {i}: {props.name}, {props.total_memory / 2**30:.1f} GB")
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            lines.append(t("Apple GPU (MPS) available."))
        else:
            lines.append(t("No GPU found: the studio runs on the CPU (training is slow, synthesis works)."))
        lines.append(t("Device in use: {device}", device=self.studio.device))
        lines.append(t("Precision in use: {plan}", plan=self.studio.synthesis.precision_plan().describe()))
        return "  \n".join(lines)

    def current_precision(self):
        import gradio as gr

        saved = self.ui.prefs.get("precision")
        if saved and saved != self.studio.settings.precision:
            self.studio.set_precision(saved)  # a value the user chose in an earlier session
        return gr.update(value=self.studio.settings.precision)

    def set_precision(self, mode: str) -> str:
        self.studio.set_precision(mode)
        self.ui.prefs.set("precision", self.studio.settings.precision)
        return self.ui.t("settings.precision_saved", mode=self.studio.settings.precision)

    def paths(self) -> str:
        return (
            self.ui.t("Workspace: {ws}", ws=self.studio.workspace_root)
            + "  \n"
            + self.ui.t("Base models: {path}", path=self.studio.pretrained.root)
        )

    def pronunciations(self) -> str:
        return self.studio.pronunciations.text(self.ui.t("settings.pronunciation_template"))

    def pronunciations_in_language(self, shown: str):
        """After a language switch: the template in the new language, unless the box holds the user's words."""
        import gradio as gr

        templates = {self.ui.i18n.t("settings.pronunciation_template", lang) for lang in self.ui.i18n.tables}
        return self.pronunciations() if (shown or "").strip() in {t.strip() for t in templates} | {""} else gr.update()

    def save_pronunciations(self, text: str) -> str:
        """Check and save the list; a bad line becomes a message naming it, and nothing is written."""
        lexicon = self.studio.pronunciations.save(text or "")
        return self.ui.t(
            "Saved: {en} English and {zh} Chinese word(s). New takes and the HTTP API use them at once.",
            en=len(lexicon.en),
            zh=len(lexicon.zh),
        )

    def current_language(self):
        import gradio as gr

        return gr.update(value=self.ui.lang)


def build_settings_tab(studio, ui: UIContext) -> None:
    import gradio as gr

    h = SettingsHandlers(studio, ui)
    with gr.Row():
        with gr.Column(scale=1):
            ui.tr(gr.Markdown("### Language"))
            ui.language_picker = gr.Radio(
                choices=[(name, code) for code, name in LANGUAGES.items()],
                value=ui.lang,
                label="Interface language",
                elem_id="ui-language",
            )
            ui.tr(ui.language_picker, choices=False)
            ui.tr(gr.Markdown("### Device"))
            device_md = gr.Markdown(elem_id="device-info")
            device_btn = ui.tr(gr.Button("Check device", elem_id="device-check"))
            ui.tr(gr.Markdown("### Speed"))
            precision = ui.tr(
                gr.Radio(
                    PRECISION_CHOICES,
                    value=studio.settings.precision,
                    label="Inference precision",
                    info="Lighter weights make synthesis faster with a small, measured change in the sound; Exact gives "
                    "the same audio as GPT-SoVITS. Takes effect with the next take.",
                    elem_id="precision",
                )
            )
            precision_md = gr.Markdown(elem_id="precision-status")
            paths_md = gr.Markdown(elem_id="paths-info")
        with gr.Column(scale=2):
            ui.tr(gr.Markdown("### Base models"))
            summary = gr.Markdown(elem_id="models-summary")
            table = gr.HTML(elem_id="models-table")
            with gr.Row(equal_height=True):
                folder = ui.tr(
                    gr.Textbox(
                        label="Models folder",
                        info="Already have GPT-SoVITS? Give its pretrained_models folder instead of downloading.",
                        placeholder="/path/to/GPT_SoVITS/pretrained_models",
                        value=str(studio.pretrained.root),
                        elem_id="models-folder",
                        scale=4,
                    )
                )
                folder_btn = ui.tr(gr.Button("Use this folder", elem_id="models-folder-use", scale=1))
            source = ui.tr(
                gr.Radio(
                    SOURCES,
                    value="hf",
                    label="Download from",
                    info="Use the mirror where Hugging Face is slow or blocked.",
                )
            )
            custom = ui.tr(gr.Textbox(label="Mirror address", placeholder="https://…", visible=False))
            base_version = ui.tr(
                gr.Radio(
                    BASE_CHOICES,
                    value="v2",
                    label="Base version to download",
                    info="v2ProPlus clones a voice most closely (upstream's recommendation); v2 is the smallest.",
                    elem_id="models-version",
                )
            )
            with gr.Row():
                download_btn = ui.tr(gr.Button("Download missing files", variant="primary", elem_id="models-download"))
                stop_btn = ui.tr(gr.Button("Stop", variant="stop"))
                refresh_btn = ui.tr(gr.Button("Check again"))
            build_asr_section(studio, ui, h.endpoint, source, custom)

    with gr.Row():
        with gr.Column():
            ui.tr(gr.Markdown("### Pronunciations"))
            ui.tr(
                gr.Markdown(
                    "Words the voice reads wrongly (names, brands): one per line as `language | word | reading`. "
                    "English readings are ARPAbet phones (as in CMUdict), Chinese readings pinyin with tone digits. "
                    "Check the result with “How it will be read” in Synthesize.",
                    elem_classes=["studio-caption"],
                )
            )
            pron_text = ui.tr(gr.Textbox(lines=8, max_lines=30, show_label=False, elem_id="pron-text"))
            with gr.Row():
                pron_save = ui.tr(gr.Button("Save pronunciations", variant="primary", elem_id="pron-save"))
                pron_status = gr.Markdown(elem_id="pron-status")

    def download(source_value, custom_value, version_value, progress=gr.Progress()):
        yield from h.download(source_value, custom_value, progress=progress, version=version_value)

    event = download_btn.click(
        guarded(download),
        [source, custom, base_version],
        [table, summary],
        concurrency_limit=1,
        concurrency_id="download",
    )
    stop_btn.click(None, None, None, cancels=[event])
    refresh_btn.click(guarded(h.status), None, [table, summary])
    folder_btn.click(guarded(h.use_folder), folder, [table, summary, paths_md, folder], show_progress="hidden")
    source.change(lambda value: gr.update(visible=value == "custom"), source, custom, queue=False)
    device_btn.click(guarded(h.device), None, device_md)
    precision.input(guarded(h.set_precision), precision, precision_md)
    ui.on_load(h.current_precision, None, precision)
    ui.on_load(h.status, None, [table, summary])
    ui.on_load(h.paths, None, paths_md)
    ui.on_load(h.pronunciations, None, pron_text)
    pron_save.click(guarded(h.save_pronunciations), pron_text, pron_status)
    ui.on_load(h.current_language, None, ui.language_picker)
    ui.on_language(h.status, None, [table, summary])
    ui.on_language(h.paths, None, paths_md)
    ui.on_language(h.pronunciations_in_language, pron_text, pron_text)
    ui.on_language(lambda shown: h.device() if shown else "", device_md, device_md)

"""The studio app: theme, queue, the project picker and the tabs.

``build_app(studio)`` only lays components out and wires events; every tab lives in ``studio/ui/tabs/<name>.py``
as ``build_<name>_tab(studio, ui)``. Nothing heavy is imported here (torch and Whisper load when a
handler first needs them), so the page is served within a few seconds of starting.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from studio.ui.context import MODEL_QUEUE, UIContext
from studio.ui.errors import configure as configure_errors
from studio.ui.errors import guarded

_LOGGER = logging.getLogger(__name__)

# (tab id, English label, module, builder) in the order a user goes through them
TABS = (
    ("record", "Record & Upload", "studio.ui.tabs.record", "build_record_tab"),
    ("prepare", "Prepare", "studio.ui.tabs.prepare", "build_prepare_tab"),
    ("train", "Train", "studio.ui.tabs.train", "build_train_tab"),
    ("synthesize", "Synthesize", "studio.ui.tabs.synthesize", "build_synthesize_tab"),
    ("script", "Script", "studio.ui.tabs.script", "build_script_tab"),
    ("voices", "Voices", "studio.ui.tabs.voices", "build_voices_tab"),
    ("settings", "Models & Settings", "studio.ui.tabs.settings", "build_settings_tab"),
)

CSS = """
.studio-header h1 { margin-bottom: 0; }
.studio-next { border-left: 4px solid var(--color-accent); padding-left: 0.6em; }
.studio-warning { border-left: 4px solid #d97706; background: #fffbeb; padding: 0.4em 0.8em; border-radius: 6px; }
.studio-footer { font-size: 0.85em; opacity: 0.75; }
.studio-caption { font-size: 0.85em; opacity: 0.8; }
.studio-end { align-self: flex-end; }
.studio-files { width: 100%; border-collapse: collapse; font-size: 0.9em; }
.studio-files th, .studio-files td { text-align: left; padding: 0.3em 0.5em; border-bottom: 1px solid var(--border-color-primary); overflow-wrap: anywhere; }
"""


def _theme():
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", secondary_hue="sky")


def _load_builder(module: str, name: str):
    """The tab builder, or ``None`` while its module is not written yet (the app still starts)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        if isinstance(exc, ImportError) and exc.name not in (module, None) and not module.startswith(str(exc.name)):
            raise  # the module exists but one of its imports is broken: a real bug, not a missing tab
        _LOGGER.warning("tab %s is not available yet (%s)", module, exc)
        return None


def _project_row(ui: UIContext):
    """The project picker above the tabs; returns the function that refreshes its choices."""
    import gradio as gr

    def choose(name: str | None):
        from studio.workspace import validate_name

        name = (name or "").strip()
        if name:
            validate_name(name)
        ui.prefs.set("current_project", name)

    def refresh():
        current = ui.current_project
        choices = sorted(set(ui.projects()) | ({current} if current else set()))
        return gr.update(choices=choices, value=current or None)

    with gr.Row(equal_height=True):
        ui.project = ui.tr(
            gr.Dropdown(
                choices=[],
                label="Voice project",
                info="Pick a project, or type a new name (for example: my-voice) and press Enter.",
                allow_custom_value=True,
                scale=3,
                elem_id="project-picker",
            )
        )
        hint = ui.tr(
            gr.Markdown(
                "Steps: 1 Record & Upload → 2 Prepare → 3 Train → 4 Synthesize → 5 Voices (export).",
                elem_classes=["studio-next"],
            )
        )
        del hint
    ui.project.change(guarded(choose), inputs=ui.project, outputs=None, queue=False)
    return refresh


def _models_banner(ui: UIContext, studio):
    """A notice above the tabs while base model files are missing (re-checked on every page load), with a button
    that opens Models & Settings at its Download button; the terminal says the command instead (webui.py).
    Returns the button, wired to the tabs by :func:`_wire_models_banner` once they exist."""
    import gradio as gr

    with gr.Row(equal_height=True):
        banner = gr.Markdown("", visible=False, elem_id="models-missing", elem_classes=["studio-warning"])
        opener = ui.tr(
            gr.Button("Open Models & Settings", visible=False, scale=0, min_width=220, elem_id="models-missing-open")
        )

    def check():
        missing = studio.pretrained.missing_for_any_base()  # a complete v2, v2Pro or v2ProPlus base is enough
        if not missing:
            return gr.update(value="", visible=False), gr.update(visible=False)
        text = ui.t("settings.models_missing", n=len(missing), folder=f"`{Path(studio.pretrained.root).name}/`")
        return gr.update(value=text, visible=True), gr.update(visible=True)

    ui.on_load(check, None, [banner, opener])
    ui.on_language(check, None, [banner, opener])
    return opener


def _wire_models_banner(opener, tabs) -> None:
    """The banner's button selects the Models & Settings tab and brings its Download button into view."""
    import gradio as gr

    scroll = "() => { setTimeout(() => document.querySelector('#models-download')?.scrollIntoView({block: 'center'}), 400); }"
    opener.click(lambda: gr.Tabs(selected="settings"), None, tabs, js=scroll, queue=False, show_progress="hidden")


def _placeholder(ui: UIContext, label: str) -> None:
    import gradio as gr

    ui.tr(gr.Markdown("This part of the studio is being built and will appear here soon."))
    del label


def build_app(studio) -> object:
    """The whole studio as a ``gr.Blocks`` (call ``.queue()``'d and ready to ``launch``)."""
    import gradio as gr

    ui = UIContext.create(studio)
    configure_errors(ui)
    with gr.Blocks(title="SoVITS Studio", theme=_theme(), css=CSS, analytics_enabled=False) as demo:
        title = ui.tr(gr.Markdown("# SoVITS Studio", elem_classes=["studio-header"]))
        del title
        ui.library_changed = gr.State(0)
        opener = _models_banner(ui, studio)
        refresh_projects = _project_row(ui)
        with gr.Tabs(elem_id="studio-tabs") as tabs:
            for tab_id, label, module, builder_name in TABS:
                builder = _load_builder(module, builder_name)
                with gr.Tab(label, id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    ui.tr(tab)
                    if builder is None:
                        _placeholder(ui, label)
                    else:
                        builder(studio, ui)
        _wire_models_banner(opener, tabs)
        ui.tr(
            gr.Markdown(
                "Only clone voices that are yours or that you have permission to use. "
                "Every file the studio synthesizes is marked as AI-generated in its metadata.",
                elem_classes=["studio-footer"],
            )
        )
        ready = gr.HTML("", elem_id="studio-ready", padding=False)
        _wire_language(ui, demo, refresh_projects)
        # after every load hook: a marker that tests (and nothing else) wait for
        demo.load(lambda: '<span id="studio-loaded"></span>', None, ready, show_progress="hidden")
    demo.queue(default_concurrency_limit=4)
    return demo


def _wire_language(ui: UIContext, demo, refresh) -> None:
    """Render every registered text in the saved language on page load and when the language changes."""
    outputs = [*ui.translated_components, ui.project]

    def on_load():
        return [*ui.translated_updates(), refresh()]

    demo.load(on_load, inputs=None, outputs=outputs, queue=False, show_progress="hidden")
    for fn, inputs, hook_outputs in ui.load_hooks:
        demo.load(guarded(fn), inputs=inputs, outputs=hook_outputs, show_progress="hidden")
    if ui.language_picker is not None:

        def switch(lang: str):
            ui.prefs.language = lang
            return [*ui.translated_updates(lang), refresh()]

        event = ui.language_picker.change(
            guarded(switch), inputs=ui.language_picker, outputs=outputs, show_progress="hidden"
        )
        # Gradio's own strings (upload areas, recorder, footer) switch too (see studio/ui/local_page.py)
        event.then(None, ui.language_picker, None, js="(lang) => { window.studioSetLocale?.(lang); }")
        # then the texts that handlers filled in (tables, status lines), now that ui.t answers in the new language
        for fn, inputs, hook_outputs in ui.language_hooks:
            event.then(guarded(fn), inputs=inputs, outputs=hook_outputs, show_progress="hidden")


__all__ = ["build_app", "MODEL_QUEUE", "TABS"]

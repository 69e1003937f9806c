"""What every tab builder gets besides the :class:`Studio`: shared components and the translation helper.

Contract for tab builders (``build_<name>_tab(studio, ui) -> None``, called inside a ``gr.Tab``):

* ``ui.t(key, **fmt)`` — a string in the current UI language (for messages built in handlers).
* ``ui.tr(component)`` — registers a component's ``label``, ``info``, ``placeholder``, choice labels and, for
  ``Button``/``Markdown``, its ``value`` as English keys; they are re-rendered in the chosen language on every
  page load and when the language is switched. Write components in English: ``ui.tr(gr.Button("Start"))``.
* ``ui.project`` — the "voice project" dropdown above the tabs (value = project name, ``""`` when none);
  listen with ``ui.project.change(...)`` and read it as an input. ``ui.projects()`` lists them.
* ``ui.library_changed`` — a ``gr.State`` counter; output ``ui.bump_library()``'s value to it after adding or
  removing a voice so the Synthesize and Voices tabs refresh their lists.
* ``ui.on_load(fn, inputs, outputs)`` — run ``fn`` on every page load (after the texts are translated), e.g. to
  re-read state from the workspace so that nothing is lost on a reload.
* ``ui.on_language(fn, inputs, outputs)`` — run ``fn`` right after the UI language was switched, to re-render
  texts that handlers filled in (tables, status lines); ``ui.t`` already answers in the new language then.
* ``MODEL_QUEUE`` — pass ``concurrency_id=MODEL_QUEUE, concurrency_limit=1`` to events that run a model
  (synthesis, transcription, training start), so they queue instead of competing for the device.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from studio.ui.i18n import I18n, Preferences

MODEL_QUEUE = "model"
_TEXT_ATTRS = ("label", "info", "placeholder", "x_title", "y_title")
_counter = itertools.count(1)


@dataclass
class UIContext:
    studio: Any  # studio.services.studio.Studio
    i18n: I18n
    prefs: Preferences
    project: Any = None  # gr.Dropdown, created by build_app before the tabs
    library_changed: Any = None  # gr.State(int)
    language_picker: Any = None  # gr.Radio in the Settings tab
    translatables: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    load_hooks: list[tuple[Any, Any, Any]] = field(default_factory=list)
    language_hooks: list[tuple[Any, Any, Any]] = field(default_factory=list)
    used_keys: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, studio) -> UIContext:
        return cls(studio=studio, i18n=I18n(), prefs=Preferences(studio.workspace_root))

    @property
    def lang(self) -> str:
        return self.prefs.language

    def t(self, key: str, **fmt: Any) -> str:
        self.used_keys.add(key)
        return self.i18n.t(key, self.lang, **fmt)

    # ------------------------------------------------------------------------------------------ translation

    def tr(self, component, **keys: Any):
        """Register ``component``'s visible English texts for translation; returns the component."""
        translate_choices = keys.pop("choices", True) is not False  # choices=False keeps e.g. language names
        found: dict[str, Any] = {}
        for attr in _TEXT_ATTRS:
            value = keys.get(attr, getattr(component, attr, None))
            if isinstance(value, str) and value:
                found[attr] = value
        kind = type(component).__name__
        value = keys.get("value", getattr(component, "value", None))
        explicit = "value" in keys or kind in ("Button", "Markdown", "DownloadButton", "UploadButton")
        if explicit and isinstance(value, str) and value:
            found["value"] = value
        choices = getattr(component, "choices", None)
        if translate_choices and choices and any(isinstance(c, tuple | list) and c[0] != c[1] for c in choices):
            found["choices"] = [(str(c[0]), c[1]) for c in choices]
        if found:
            self.translatables.append((component, found))
            self.used_keys.update(v for k, v in found.items() if k != "choices")
            self.used_keys.update(label for label, _ in found.get("choices", []))
        return component

    def translated_updates(self, lang: str | None = None) -> list[Any]:
        """One ``gr.update`` per registered component, in registration order, for ``lang``."""
        import gradio as gr

        lang = lang or self.lang
        updates = []
        for _component, keys in self.translatables:
            kwargs: dict[str, Any] = {}
            for attr, key in keys.items():
                if attr == "choices":
                    kwargs["choices"] = [(self.i18n.t(label, lang), value) for label, value in key]
                else:
                    kwargs[attr] = self.i18n.t(key, lang)
            updates.append(gr.update(**kwargs))
        return updates

    @property
    def translated_components(self) -> list[Any]:
        return [component for component, _ in self.translatables]

    def on_load(self, fn, inputs=None, outputs=None) -> None:
        self.load_hooks.append((fn, inputs, outputs))

    def on_language(self, fn, inputs=None, outputs=None) -> None:
        self.language_hooks.append((fn, inputs, outputs))

    # ------------------------------------------------------------------------------------------ projects

    def projects(self) -> list[str]:
        from studio.workspace import list_workspaces

        return [w.name for w in list_workspaces(self.studio.workspace_root)]

    @property
    def current_project(self) -> str:
        return str(self.prefs.get("current_project", "") or "")

    @staticmethod
    def bump_library() -> int:
        return next(_counter)

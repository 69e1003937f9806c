"""Small helpers shared by the Record, Prepare and Train tabs: translated components, service access.

Texts are locale keys (``record.keep``) whose English wording lives in ``studio/ui/locales/<tab>.en.json``;
:func:`widget` builds a component with the texts of the current language and registers the keys with
``ui.tr`` so the app re-renders them when the language changes. Nothing here keeps state between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studio.errors import StudioError, WorkspaceError

_TEXT_ATTRS = ("label", "info", "placeholder", "value", "x_title", "y_title")


def tr(ui: Any, key: str, **fmt: Any) -> str:
    """``ui.t(key, **fmt)``; the key itself when the context has no translator."""
    translate = getattr(ui, "t", None)
    if translate is None:
        return key.format(**fmt) if fmt else key
    return translate(key, **fmt)


def widget(ui: Any, cls: Callable[..., Any], /, **kwargs: Any) -> Any:
    """``cls(**kwargs)`` where the texts (``label``, ``info``, ``placeholder``, ``value``, axis titles) given as ``"@key"`` are locale keys."""
    keys = {a: kwargs[a][1:] for a in _TEXT_ATTRS if isinstance(kwargs.get(a), str) and kwargs[a].startswith("@")}
    for attr, key in keys.items():
        kwargs[attr] = tr(ui, key)
    component = cls(**kwargs)
    register = getattr(ui, "tr", None)
    if keys and register is not None:
        register(component, **keys)
    return component


def recording_service(studio: Any):
    """The :class:`RecordingService` of ``studio``'s workspace (a new one for a studio object without it)."""
    service = getattr(studio, "recording", None)
    if service is None:
        from studio.services.recording import RecordingService

        service = RecordingService(studio.workspace_root)
    return service


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Part A's ``studio.ui.errors.guarded`` (errors → short message in the page, never a traceback)."""
    from studio.ui.errors import guarded

    return guarded(fn)


def fmt_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}:{rest:02d} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d} h"


def project_name(value: Any, ui: Any = None) -> str:
    """The project name from the picker's value; the saved current project when the picker is still empty."""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    name = str(value or "").strip()
    if not name and ui is not None:
        name = str(getattr(ui, "current_project", "") or "").strip()
    return name


def need_project(value: Any, ui: Any) -> str:
    name = project_name(value, ui)
    if not name:
        raise WorkspaceError(tr(ui, "record.need_project"))
    return name


def user_error(message: str) -> StudioError:
    return StudioError(message)


def on_load(ui: Any, fn: Callable[..., Any], inputs: Any, outputs: Any) -> None:
    """Run ``fn`` on every page load (so a reload re-reads the workspace)."""
    hook = getattr(ui, "on_load", None)
    if hook is not None:
        hook(fn, inputs, outputs)


def on_language(ui: Any, fn: Callable[..., Any], inputs: Any, outputs: Any) -> None:
    """Run ``fn`` right after the UI language was switched (to re-render texts that handlers wrote)."""
    hook = getattr(ui, "on_language", None)
    if hook is not None:
        hook(fn, inputs, outputs)


def model_queue() -> dict[str, Any]:
    """Event kwargs that put a model-running handler in the app's single model queue."""
    try:
        from studio.ui.context import MODEL_QUEUE
    except ImportError:  # pragma: no cover - the app shell always has it
        return {}
    return {"concurrency_id": MODEL_QUEUE, "concurrency_limit": 1}

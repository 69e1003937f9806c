"""Turn errors into short messages in the page, never tracebacks — the one place every tab's errors pass.

``@guarded`` wraps an event handler (plain function or generator):

* a :class:`~studio.errors.StudioError` becomes ``gr.Error`` — a red toast titled by the kind of error (its
  class in ``studio/errors.py``), with the message and what to do next *in the page* (``ui_hint`` when the error
  has one, else its ``hint``), in the interface language; absolute paths are shown relative to the workspace or
  as file names, and the text is escaped so that ``<urlopen error …>`` shows as written instead of vanishing
  as an HTML tag;
* any other exception is logged with its traceback (in the terminal) and shown as a one-line message.

``configure(ui)`` (called by ``build_app``) gives this module the translator and the folders to shorten.
Use ``warn()`` / ``info()`` for messages that should not stop the handler.
"""

from __future__ import annotations

import functools
import html
import inspect
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio import errors as E

_LOGGER = logging.getLogger(__name__)

#: toast titles by error kind (the nearest class in the error's MRO wins); English keys of the i18n tables
TITLES: dict[type, str] = {
    E.TextError: "Check the text",
    E.ReferenceAudioError: "Check the reference clip",
    E.AudioError: "Check the audio file",
    E.CheckpointError: "This model file cannot be used",
    E.MissingPretrainedError: "Base models are missing",
    E.WorkspaceError: "Check the project",
    E.DatasetError: "The dataset is not ready",
    E.ASRModelMissingError: "No speech-recognition model",
    E.TrainingError: "Training cannot go on",
    E.VoicePackError: "This voice pack cannot be used",
    E.DownloadError: "Download failed",
    E.StudioError: "Cannot do that yet",
}
_ABS_PATH = re.compile(r"""(?<![\w:/.~])(?:/[^\s'"`<>|:,;()]+)+|\b[A-Za-z]:\\[^\s'"`<>|:,;()]+""")
_context: dict[str, Any] = {"t": lambda key, **fmt: key.format(**fmt) if fmt else key, "roots": []}


def configure(ui) -> None:
    """Use ``ui.t`` for titles and hints, and show paths below the workspace relative to it."""
    roots = [(Path(ui.studio.workspace_root), "")]
    pretrained = getattr(getattr(ui.studio, "pretrained", None), "root", None)
    if pretrained is not None:
        roots.append((Path(pretrained), Path(pretrained).name + "/"))
    _context.update(t=ui.t, roots=roots)


def short_paths(text: str) -> str:
    """Absolute paths → relative to the workspace (``alice/dataset.list``) or the models folder, else the name."""
    for root, shown in _context["roots"]:
        for form in {str(root), str(root.resolve())}:
            text = text.replace(form.rstrip("/\\") + "/", shown)
    return _ABS_PATH.sub(lambda m: Path(m.group(0).replace("\\", "/")).name or m.group(0), text)


def present(exc: BaseException) -> tuple[str, str]:
    """(title, plain text) of a user-facing error, in the interface language."""
    t = _context["t"]
    title = next((TITLES[cls] for cls in type(exc).__mro__ if cls in TITLES), TITLES[E.StudioError])
    if not isinstance(exc, E.StudioError):
        return t(title), str(exc)
    hint = t(exc.ui_hint) if exc.ui_hint else exc.hint
    body = exc.message if not hint else f"{exc.message}{chr(10) if chr(10) in exc.message else ' '}{hint}"
    return t(title), short_paths(body)


def as_html(text: str) -> str:
    """Text safe to show in a toast: angle brackets and ampersands literal, line breaks kept."""
    return html.escape(text, quote=False).replace("\n", "<br>")


def _as_gradio_error(exc: BaseException):
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, E.StudioError):
        _LOGGER.info("user-facing error: %s", exc)
        title, text = present(exc)
        return gr.Error(as_html(text), title=as_html(title), print_exception=False)
    _LOGGER.exception("unexpected error in a UI handler")
    short = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    message = _context["t"]("Something went wrong: {error}. Details are in the studio's terminal window.", error=short)
    return gr.Error(as_html(short_paths(message)), print_exception=False)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for Gradio handlers: errors become ``gr.Error`` with a human message."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except GeneratorExit:
                raise
            except Exception as exc:  # noqa: BLE001 - every error must reach the user as a message
                raise _as_gradio_error(exc) from None

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise _as_gradio_error(exc) from None

    return wrapper


def warn(message: str) -> None:
    import gradio as gr

    gr.Warning(message)


def info(message: str) -> None:
    import gradio as gr

    gr.Info(message)

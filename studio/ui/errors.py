"""Turn errors into short messages in the page, never tracebacks.

``@guarded`` wraps an event handler (plain function or generator):

* a :class:`~studio.errors.StudioError` becomes ``gr.Error(message)`` — a red toast with the human message and
  hint; the page keeps working and the outputs keep their values;
* any other exception is logged with its traceback (in the terminal) and shown as a one-line message.

Use ``warn()`` / ``info()`` for messages that should not stop the handler.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from studio.errors import StudioError

_LOGGER = logging.getLogger(__name__)


def _as_gradio_error(exc: BaseException):
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, StudioError):
        _LOGGER.info("user-facing error: %s", exc)
        return gr.Error(str(exc), title="Cannot do that yet", print_exception=False)
    _LOGGER.exception("unexpected error in a UI handler")
    short = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return gr.Error(
        f"Something went wrong: {short}. Details are in the studio's terminal window.", print_exception=False
    )


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

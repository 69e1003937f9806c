"""How a training job ended, in words, and the tidying a job does when it (re)starts.

A job that crashes writes its own ``error`` event; one that is killed cannot. The process that spawned it
sees the exit status instead and records an ``interrupted`` event with :func:`exit_reason` ("killed by signal
9 …"), so the Train tab and ``studio train`` can say why a run stopped rather than just that it did.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

from studio.training.events import EventWriter, read_events
from studio.training.run_layout import RunPaths

_LOGGER = logging.getLogger(__name__)

NO_REASON = (
    "the training process ended without a last word (it was killed, the computer shut down or ran out of "
    "memory, or the studio that started it was closed); resume to continue from the last checkpoint"
)


#: how a run ended, as message keys: the English templates the events hold; the studio's page shows the same
#: key in its language (``train.outcome.<key>`` and ``train.outcome.why.<key>`` in the locale tables)
OUTCOMES: dict[str, str] = {
    "no_reason": NO_REASON,
    "signal": "killed by signal {number} ({name}): {why}; resume to continue from the last checkpoint",
    "exit_code": "the training process exited with code {code} without saying why (see job.log)",
    "stopped": "{why}; resume to continue from the last checkpoint",
}
WHY: dict[str, str] = {
    "killed": "the system may have run out of memory, or someone ended the process",
    "keyboard": "interrupted from the keyboard",
    "terminated": "the system or another program asked it to end",
    "outside": "ended from outside",
    "user": "stopped by the user",
    "sigterm": "stopped by a termination signal (SIGTERM)",
}


def parse_outcome(message: str | None) -> tuple[str, dict[str, str]] | None:
    """(key, parameters) of a reason written from :data:`OUTCOMES` (``why`` as its :data:`WHY` key), or None
    for any other text — so the page can say it in its language without the events changing."""
    import re

    for key, template in OUTCOMES.items():
        parts = re.split(r"\{(\w+)\}", template)  # literal, name, literal, name, …
        pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
        found = re.fullmatch(pattern, message or "")
        if found:
            params = found.groupdict()
            if "why" in params:
                why = next((k for k, v in WHY.items() if v == params["why"]), None)
                if why is None:
                    continue
                params["why"] = why
            return key, params
    return None


def exit_reason(returncode: int | None) -> str:
    """Words for a job process's exit status when it wrote no final event itself."""
    if returncode is None:
        return NO_REASON
    if returncode < 0:
        number = -returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        why = {signal.SIGKILL: "killed", signal.SIGINT: "keyboard", signal.SIGTERM: "terminated"}.get(number, "outside")
        return OUTCOMES["signal"].format(number=number, name=name, why=WHY[why])
    return OUTCOMES["exit_code"].format(code=returncode)


def watch_exit(proc, paths: RunPaths) -> threading.Thread:
    """Wait for the job process ``proc`` in a daemon thread; when it ends without a final event of its own
    (killed), append an ``interrupted`` event saying how it ended."""

    def wait() -> None:
        code = proc.wait()
        events = read_events(paths.events)
        starts = [i for i, e in enumerate(events) if e.kind == "start"]
        current = events[starts[-1] :] if starts else events
        if not any(e.terminal for e in current):
            EventWriter(paths.events)("interrupted", message=exit_reason(code))

    thread = threading.Thread(target=wait, name=f"watch-{paths.run_id}", daemon=True)
    thread.start()
    return thread


def crash_message(exc: BaseException) -> str:
    """An unexpected exception in words, with what to do for the common ones."""
    import torch

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, torch.OutOfMemoryError):
        return (
            f"out of GPU memory ({text[:160]}): choose a smaller batch size (--batch-size) or the fast preset, "
            "then resume"
        )
    if isinstance(exc, MemoryError):
        return "out of memory: close other programs or choose a smaller batch size, then resume"
    return f"training failed: {type(exc).__name__}: {text} (details in job.log)"


def remove_stale_temp(paths: RunPaths) -> list[Path]:
    """Delete half-written ``.*.tmp`` files a killed job left in its run folder (atomic writes that never
    finished); returns what was removed."""
    removed = []
    for folder in (paths.dir, paths.checkpoints_dir, paths.samples_dir):
        for path in folder.glob(".*.tmp") if folder.is_dir() else ():
            try:
                path.unlink()
            except OSError as exc:
                _LOGGER.warning("could not remove %s: %s", path, exc)
                continue
            removed.append(path)
    return removed

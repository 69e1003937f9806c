"""JSON-lines progress events of a training job (``runs/<id>/events.jsonl``).

The job appends one object per line and flushes after each; readers poll with :func:`read_events` and a
``since`` index (the number of events already seen). A line cut short by a crash is skipped.

Kinds: ``start``, ``stage`` (a stage begins: its planned epochs/steps), ``step`` (losses, lr, samples/s,
ETA), ``epoch`` (end of an epoch), ``sample`` (a sample WAV was written: ``path``), ``checkpoint``,
``stage_done``, and the terminal kinds ``done``, ``error`` (``message``), ``cancelled`` and ``interrupted``
(written by the process that spawned a job which was killed: ``message`` says how, e.g. the signal).

A resumed job replays the steps after its last checkpoint without logging them again (``loop._skip_replayed``);
files written before that rule may hold a step twice, so readers keep the last of each (:func:`unique_steps`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TERMINAL = ("done", "error", "cancelled", "interrupted")


@dataclass
class TrainingEvent:
    kind: str
    stage: str | None = None  # "features", "gpt" or "sovits"
    epoch: int | None = None  # 1-based
    step: int | None = None  # optimizer steps done in this stage
    total_steps: int | None = None
    losses: dict[str, float] = field(default_factory=dict)
    lr: float | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    path: str | None = None  # sample WAV / checkpoint / output, relative to the run folder
    message: str | None = None
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingEvent:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    @property
    def terminal(self) -> bool:
        return self.kind in TERMINAL


class EventWriter:
    """Appends events to ``path``; each line is flushed to the OS so a killed process loses nothing written."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()

    def _repair_tail(self) -> None:
        """A kill in the middle of a write leaves a partial last line: end it so the next event parses."""
        if self.path.is_file() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                last = fh.read(1)
            if last != b"\n":
                with open(self.path, "ab") as fh:
                    fh.write(b"\n")

    def emit(self, event: TrainingEvent) -> TrainingEvent:
        line = json.dumps(event.to_dict(), ensure_ascii=False)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
        return event

    def __call__(self, kind: str, **kwargs: Any) -> TrainingEvent:
        return self.emit(TrainingEvent(kind, **kwargs))


@dataclass
class EventPage:
    """Events ``since`` onwards and the ``since`` value for the next poll."""

    events: list[TrainingEvent]
    next_since: int


def read_event_page(path: Path, since: int = 0) -> EventPage:
    """Events number ``since`` onwards (0-based line index). Unparseable lines are skipped but counted, and a
    last line still being written is left for the next poll, so indices stay stable while the file grows."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return EventPage([], since)
    lines.pop()  # "" after the final newline, or a line still being written
    out = []
    for line in lines[max(0, since) :]:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and "kind" in data:
            out.append(TrainingEvent.from_dict(data))
    return EventPage(out, max(since, len(lines)))


def read_events(path: Path, since: int = 0) -> list[TrainingEvent]:
    return read_event_page(path, since).events


def unique_steps(events: list[TrainingEvent]) -> list[TrainingEvent]:
    """``events`` with each (stage, step) ``step`` event once (the last one): tolerates files from resumed
    runs made before replayed steps were skipped."""
    last = {(e.stage, e.step): i for i, e in enumerate(events) if e.kind == "step"}
    return [e for i, e in enumerate(events) if e.kind != "step" or last[(e.stage, e.step)] == i]


def count_events(path: Path) -> int:
    """Number of complete lines (the ``since`` value that skips everything seen so far)."""
    try:
        return Path(path).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0

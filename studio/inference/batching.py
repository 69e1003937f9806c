"""The GPT stage of many concurrent requests, decoded in shared batches (continuous batching).

Why: a request thread that decodes its sentence alone reads every GPT weight for each token; when several
requests are in flight, :class:`TokenBatcher` lets their sentences meet in one
:class:`~studio.models.batch_decode.ContinuousDecoder` per GPT model object, which rows join and leave at every
step. Different voices are different model objects and cannot share a batch: each model gets its own batch and
the drive job steps them in turn.

Threads: a request thread calls :meth:`TokenBatcher.generate` and waits. The batches are driven on the compute
thread (:mod:`studio.inference.compute_thread`), where every model runs: a drive job prefills joining rows and
steps the batches, holding the model's lock (``Synthesizer._lock``) one step at a time, until no row is left.
While other work waits for that thread (another request's SoVITS decoding), the job lets it in every
:data:`SLICE_S` and queues itself again behind it, so the two interleave; alone, it steps on without a pause.

Cancellation: a request thread may name a check (:func:`cancellation`, e.g. "has the HTTP client gone?"); the
drive job looks at it every step and takes a cancelled row out of its batch without disturbing the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from studio.errors import StudioError
from studio.inference import compute_thread
from studio.models.batch_decode import ContinuousDecoder, DecodeRow, make_row
from studio.models.generate import GenerationResult

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_ROWS = 8
SLICE_S = 0.05  # while other work waits for the compute thread, the batches step this long, then let it in

_local = threading.local()


class GenerationCancelled(StudioError):
    """The request was cancelled while its sentence was being decoded."""


@contextmanager
def cancellation(check: Callable[[], bool]) -> Iterator[None]:
    """While the block runs, this thread's GPT stages stop as soon as ``check()`` is True (see module doc)."""
    previous = getattr(_local, "check", None)
    _local.check = check
    try:
        yield
    finally:
        _local.check = previous


@dataclass
class _Ticket:
    """One sentence's request for tokens, from the waiting thread's side."""

    row: DecodeRow
    cancelled: Callable[[], bool] | None
    done: threading.Event = field(default_factory=threading.Event)
    result: GenerationResult | None = None
    error: BaseException | None = None

    def finish(self, result: GenerationResult | None = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


@dataclass
class BatchStats:
    """What the batcher has done so far: decoding steps, the most rows one step carried, rows cancelled."""

    steps: int = 0
    peak_rows: int = 0
    cancelled: int = 0


@dataclass
class _Group:
    """The batch of one GPT model object and the lock that guards that model."""

    decoder: ContinuousDecoder
    lock: object  # threading.RLock of the Synthesizer that owns the model
    waiting: list[_Ticket] = field(default_factory=list)
    running: list[_Ticket] = field(default_factory=list)


class TokenBatcher:
    """Decodes the GPT stage of concurrent requests together; at most ``max_rows`` rows per batch."""

    def __init__(self, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be ≥ 1, got {max_rows}")
        self.max_rows = max_rows
        self._cond = threading.Condition()
        self._groups: dict[int, _Group] = {}  # id(model) → its batch
        self._driving = False  # a drive job is queued or running on the compute thread
        self.stats = BatchStats()

    def generate(self, model: torch.nn.Module, *args, lock: object, **kwargs) -> GenerationResult:
        """What :func:`studio.models.generate.generate_semantic` (same arguments after ``model``) returns, decoded
        in the model's shared batch. ``lock`` guards the model (held per step). Raises
        :class:`GenerationCancelled` when this thread's :func:`cancellation` check fires meanwhile."""
        if compute_thread.on_compute_thread():  # its steps could never run here while it waits: decode alone
            from studio.models.generate import generate_semantic

            with lock, torch.inference_mode():
                return generate_semantic(model, *args, **kwargs)
        ticket = _Ticket(make_row(model, *args, **kwargs), getattr(_local, "check", None))
        with self._cond:
            group = self._groups.get(id(model))
            if group is None:
                group = self._groups[id(model)] = _Group(ContinuousDecoder(model), lock)
            group.waiting.append(ticket)
            if not self._driving:
                self._driving = True
                compute_thread.submit(self._drive)
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    @property
    def rows(self) -> int:
        """Rows being decoded or waiting to join, over every model (for status pages and tests)."""
        with self._cond:
            return sum(len(g.waiting) + len(g.running) for g in self._groups.values())

    # ------------------------------------------------------------------------------------------ on the compute thread

    def _drive(self) -> None:
        """Step every batch with work until none is left; while other work waits for the compute thread, stop after
        :data:`SLICE_S` and queue again behind it."""
        try:
            again = self._drive_slice()
        except BaseException as exc:  # never leave a waiting request hanging
            _LOGGER.exception("GPT batch driving failed")
            with self._cond:
                tickets = [t for g in self._groups.values() for t in (*g.running, *g.waiting)]
                self._groups.clear()
                self._driving = False
            for ticket in tickets:
                ticket.finish(error=exc)
            return
        if again:
            compute_thread.submit(self._drive)

    def _drive_slice(self) -> bool:
        """Steps until no batch has work (→ False) or the slice is over while others wait (→ True)."""
        start = time.perf_counter()
        while True:
            with self._cond:
                groups = [g for g in self._groups.values() if g.waiting or g.running]
                if not groups:
                    self._groups.clear()
                    self._driving = False
                    return False
            for group in groups:
                self._step(group)
            if compute_thread.others_waiting() and time.perf_counter() - start >= SLICE_S:
                return True

    def _step(self, group: _Group) -> None:
        """Admit waiting rows, drop cancelled ones and advance the batch by one token, under the model's lock."""
        with self._cond:
            free = max(0, self.max_rows - len(group.running))
            joining, group.waiting = group.waiting[:free], group.waiting[free:]
        gone = [t for t in group.running if t.cancelled is not None and t.cancelled()]
        try:
            with group.lock, torch.inference_mode():
                if gone:
                    group.decoder.leave([t.row for t in gone])
                for ticket in joining:
                    self._join(group, ticket)
                self.stats.steps += 1
                self.stats.peak_rows = max(self.stats.peak_rows, len(group.decoder))
                finished = group.decoder.step()
        except Exception as exc:  # a broken step fails its batch, not the server
            _LOGGER.exception("GPT batch step failed")
            failed = group.running + [t for t in joining if not t.done.is_set()]
            group.decoder = ContinuousDecoder(group.decoder.model)
            with self._cond:
                group.running = []
            for ticket in failed:
                ticket.finish(error=exc)
            return
        self.stats.cancelled += len(gone)
        for ticket in gone:
            ticket.finish(error=GenerationCancelled("The request was cancelled."))
        left = {id(row) for row in finished} | {id(t.row) for t in gone}
        with self._cond:
            group.running = [t for t in group.running if id(t.row) not in left]
        for row in finished:
            row.tag.finish(row.result)

    @staticmethod
    def _join(group: _Group, ticket: _Ticket) -> None:
        if ticket.cancelled is not None and ticket.cancelled():
            ticket.finish(error=GenerationCancelled("The request was cancelled."))
            return
        ticket.row.tag = ticket
        try:
            group.decoder.join(ticket.row)
        except Exception as exc:  # this sentence cannot be prefilled (e.g. too long): only its request fails
            ticket.finish(error=exc)
            return
        group.running.append(ticket)

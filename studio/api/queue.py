"""The inference queue: worker threads per device run requests in arrival order, up to ``max_running`` at once.

A request is a *job*: a function returning an iterator (e.g. ``Synthesizer.stream``). The worker pulls the
items out of it and hands each one to the waiting HTTP handler through that job's own asyncio queue, so a
response only ever receives what its own job produced. At most ``max_waiting`` jobs wait behind the running
ones; :meth:`InferenceQueue.submit` refuses more with :class:`QueueFullError` (the API answers 503).
A client that goes away cancels its job: a waiting job is skipped, a running one stops after the item it is on
(or, while its sentence is decoded in a shared GPT batch, at the next decoding step).
:func:`cancel_on_disconnect` is how a handler notices that while it waits (streaming responses notice it
themselves: Starlette stops their body, whose ``finally`` cancels the job).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from studio.errors import StudioError
from studio.inference.batching import cancellation

_LOGGER = logging.getLogger(__name__)

_ITEM, _ERROR, _END = "item", "error", "end"


class QueueFullError(StudioError):
    """Too many requests are already waiting."""


class Job:
    """One queued unit of work, seen from the event loop that submitted it."""

    def __init__(self, work: Callable[[], Iterator[Any]], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self._loop = loop
        self._items: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._cancelled = threading.Event()
        self._finished = False
        self.exclusive = False  # runs alone (see InferenceQueue)

    # -- worker side (any thread)
    def _emit(self, kind: str, value: Any = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._items.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody listens any more
            self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # -- event-loop side
    def cancel(self) -> None:
        self._cancelled.set()

    async def next(self) -> Any:
        """The next item; raises the job's exception, or :class:`StopAsyncIteration` when it is done."""
        if self._finished:
            raise StopAsyncIteration
        kind, value = await self._items.get()
        if kind == _ITEM:
            return value
        self._finished = True
        if kind == _ERROR:
            raise value
        raise StopAsyncIteration

    async def first(self, error: Callable[[Exception], Exception]) -> Any:
        """The first item, or None when the job produced none; if the job failed, it is cancelled and
        ``error(exception)`` is raised (chained to the job's exception)."""
        try:
            return await self.next()
        except StopAsyncIteration:
            return None
        except Exception as exc:
            self.cancel()
            raise error(exc) from exc

    def __aiter__(self) -> Job:
        return self

    async def __anext__(self) -> Any:
        return await self.next()


@asynccontextmanager
async def cancel_on_disconnect(
    job: Job, is_disconnected: Callable[[], Awaitable[bool]], every_s: float = 0.25
) -> AsyncIterator[Job]:
    """While the block runs, poll ``is_disconnected`` (e.g. ``request.is_disconnected``) and cancel ``job``
    when the client has hung up, so a long request whose client is gone stops using the worker."""

    async def watch() -> None:
        while not job.cancelled and not job._finished:
            if await is_disconnected():
                _LOGGER.info("client went away: synthesis job cancelled")
                job.cancel()
                return
            await asyncio.sleep(every_s)

    watcher = asyncio.create_task(watch())
    try:
        yield job
    finally:
        watcher.cancel()


class InferenceQueue:
    """A bounded FIFO of jobs served by up to ``max_running`` worker threads (one model instance per device).

    With ``max_running`` > 1 several jobs run at once, so their GPT stages meet in the shared decoding batch
    (``studio.inference.batching``); jobs still start in arrival order. An ``exclusive`` job (loading other
    models) starts only when nothing else runs, and nothing starts while it runs.
    """

    def __init__(self, max_waiting: int = 16, *, name: str = "cpu", max_running: int = 1) -> None:
        if max_running < 1:
            raise ValueError(f"max_running must be ≥ 1, got {max_running}")
        self.max_waiting = max_waiting
        self.max_running = max_running
        self.name = name
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._running = 0
        self._exclusive = False  # an exclusive job is running
        self._stopping = False
        self._threads: list[threading.Thread] = []

    @property
    def waiting(self) -> int:
        """Jobs accepted but not started (cancelled ones included until a worker skips them)."""
        return len(self._jobs)

    @property
    def busy(self) -> bool:
        return self._running > 0

    @property
    def running(self) -> int:
        return self._running

    def start(self) -> None:
        with self._cond:
            self._stopping = False
            self._threads = [t for t in self._threads if t.is_alive()]
            for i in range(len(self._threads), self.max_running):
                thread = threading.Thread(target=self._serve, name=f"inference-{self.name}-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Let the running jobs finish, drop the waiting ones, and end the workers."""
        with self._cond:
            dropped, self._jobs = list(self._jobs), deque()
            self._stopping = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for job in dropped:
            job._emit(_ERROR, StudioError("The server is shutting down."))
        for thread in threads:
            thread.join(timeout)

    def submit(self, work: Callable[[], Iterator[Any]], *, exclusive: bool = False) -> Job:
        """Queue ``work``; must be called from the event loop that will read the job's items."""
        self.start()
        with self._cond:
            free_workers = 0 if self._exclusive else max(0, self.max_running - self._running)
            if len(self._jobs) - free_workers >= self.max_waiting and (self._running or self._jobs):
                raise QueueFullError(
                    f"The server is busy: {len(self._jobs)} request(s) are already waiting (queue size "
                    f"{self.max_waiting}).",
                    hint="Try again in a moment, or start the server with a larger --queue-size.",
                )
            job = Job(work, asyncio.get_running_loop())
            job.exclusive = exclusive
            self._jobs.append(job)
            self._cond.notify_all()
        return job

    def _can_start(self) -> bool:
        """Whether the first waiting job may start now. Holds ``_cond``."""
        if not self._jobs or self._exclusive:
            return False
        if self._jobs[0].exclusive:
            return self._running == 0
        return self._running < self.max_running

    def _serve(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._can_start())
                if self._stopping:
                    return
                job = self._jobs.popleft()
                self._running += 1
                self._exclusive = job.exclusive
            ending: tuple[str, Any] = (_END, None)
            try:
                if not job.cancelled:
                    ending = self._run(job)
            finally:
                # The queue is free again *before* the job's last word reaches its client, so a client that
                # has its answer never sees the server still busy with it.
                with self._cond:
                    self._running -= 1
                    self._exclusive = False
                    self._cond.notify_all()
                job._emit(*ending)

    @staticmethod
    def _run(job: Job) -> tuple[str, Any]:
        """Run ``job``, handing each item over as it comes; returns the job's closing event. While it runs, the
        job's GPT stages in a shared decoding batch stop as soon as the job is cancelled."""
        items = None
        try:
            with cancellation(lambda: job.cancelled):
                items = job.work()
                for item in items:
                    job._emit(_ITEM, item)
                    if job.cancelled:
                        break
        except BaseException as exc:  # handed to the request that caused it; the worker lives on
            if not isinstance(exc, StudioError):
                _LOGGER.exception("synthesis job failed")
            return _ERROR, exc
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        return _END, None

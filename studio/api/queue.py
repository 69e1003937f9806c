"""The inference queue: one worker thread per device runs requests one at a time, in arrival order.

A request is a *job*: a function returning an iterator (e.g. ``Synthesizer.stream``). The worker pulls the
items out of it and hands each one to the waiting HTTP handler through that job's own asyncio queue, so a
response only ever receives what its own job produced. At most ``max_waiting`` jobs wait behind the running
one; :meth:`InferenceQueue.submit` refuses more with :class:`QueueFullError` (the API answers 503).
A client that goes away cancels its job: a waiting job is skipped, a running one stops after the item it is on.
:func:`cancel_on_disconnect` is how a handler notices that while it waits (streaming responses notice it
themselves: Starlette stops their body, whose ``finally`` cancels the job).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from studio.errors import StudioError

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
    """A bounded FIFO of jobs served by one worker thread (one model instance per device)."""

    def __init__(self, max_waiting: int = 16, *, name: str = "cpu") -> None:
        self.max_waiting = max_waiting
        self.name = name
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting = 0
        self._busy = False
        self._thread: threading.Thread | None = None

    @property
    def waiting(self) -> int:
        return self._waiting

    @property
    def busy(self) -> bool:
        return self._busy

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._serve, name=f"inference-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the running job finish, drop the waiting ones, and end the worker."""
        thread = self._thread
        if thread is None:
            return
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job._emit(_ERROR, StudioError("The server is shutting down."))
        self._jobs.put(None)
        thread.join(timeout)
        self._thread = None

    def submit(self, work: Callable[[], Iterator[Any]]) -> Job:
        """Queue ``work``; must be called from the event loop that will read the job's items."""
        self.start()
        with self._lock:
            if self._waiting >= self.max_waiting and (self._busy or self._waiting > 0):
                raise QueueFullError(
                    f"The server is busy: {self._waiting} request(s) are already waiting (queue size "
                    f"{self.max_waiting}).",
                    hint="Try again in a moment, or start the server with a larger --queue-size.",
                )
            self._waiting += 1
        job = Job(work, asyncio.get_running_loop())
        self._jobs.put(job)
        return job

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._lock:
                self._waiting -= 1
                self._busy = True
            ending: tuple[str, Any] = (_END, None)
            try:
                if not job.cancelled:
                    ending = self._run(job)
            finally:
                # The queue is free again *before* the job's last word reaches its client, so a client that
                # has its answer never sees the server still busy with it.
                with self._lock:
                    self._busy = False
                job._emit(*ending)

    @staticmethod
    def _run(job: Job) -> tuple[str, Any]:
        """Run ``job``, handing each item over as it comes; returns the job's closing event."""
        items = None
        try:
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

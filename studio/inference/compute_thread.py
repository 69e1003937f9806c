"""One thread for the process's model computations (CPU speed; issue 9).

Why: PyTorch's CPU operators run on OpenMP (GNU libgomp). Each thread that runs a parallel operator gets its own
team of OpenMP workers and keeps it until that thread ends. Once the teams' threads outnumber the CPUs, libgomp
stops letting idle workers spin between two operators: every one of the SoVITS decoder's thousands of short
parallel regions then waits for a sleeping worker to wake up. A server or the studio's UI runs requests on
several threads (a worker pool, a GPT batch thread, the thread that loaded the voice), so it hit this every
time. Measured on a 2-core CPU, int8 mode, official sizes, 10 s of English: a voice loaded on one thread and
synthesised on another ran at RTF 0.29–0.30, one thread doing both at 0.25–0.26; a 4 s SoVITS decode took 0.45 s
against 0.29 s.

So every model computation — loading a voice, a text's BERT features, a reference clip's HuBERT tokens and
spectrograms, GPT decoding (each step of a shared batch too), SoVITS decoding — is handed to this one
long-lived thread with :func:`run`, and the calling thread waits for the result (an exception is raised in the
caller). Work that is already on the thread runs inline. Text rules, audio encoding and everything else stay on
the caller's thread, so they overlap with the models' work.

Two rules keep this free of deadlocks:

* a caller must not hold a lock that the function it hands over takes (take locks inside the function);
* a function run here must not wait for other work that needs this thread (e.g. a shared GPT batch, which is
  driven here: ``TokenBatcher.generate`` called on this thread decodes alone instead of waiting for the batch).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

THREAD_NAME = "studio-compute"

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_thread: threading.Thread | None = None
_pid: int | None = None
_start_lock = threading.Lock()


def on_compute_thread() -> bool:
    """True when the calling thread is the compute thread."""
    return _thread is not None and threading.current_thread() is _thread


def run(fn: Callable[..., T], /, *args, **kwargs) -> T:
    """``fn(*args, **kwargs)`` on the compute thread; waits and returns its result, or raises its exception."""
    if on_compute_thread():
        return fn(*args, **kwargs)
    return submit(fn, *args, **kwargs).result()


def submit(fn: Callable[..., T], /, *args, **kwargs) -> Future:
    """Queue ``fn(*args, **kwargs)`` behind the work already waiting, without waiting for it; the returned future
    holds its result or exception."""
    future: Future = Future()
    _ensure_started().put((future, fn, args, kwargs))
    return future


def others_waiting() -> bool:
    """True when work is queued for the compute thread (a long job running there may then let it in)."""
    return not _jobs.empty()


def _ensure_started() -> queue.SimpleQueue:
    global _jobs, _thread, _pid
    with _start_lock:
        if _thread is None or not _thread.is_alive() or _pid != os.getpid():  # first use, or in a forked child
            _jobs = queue.SimpleQueue()
            _pid = os.getpid()
            _thread = threading.Thread(target=_serve, args=(_jobs,), name=THREAD_NAME, daemon=True)
            _thread.start()
        return _jobs


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        _run_job(*jobs.get())  # in a function of its own: nothing of a finished job stays alive here


def _run_job(future: Future, fn: Callable, args: tuple, kwargs: dict) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # handed to the caller, whatever it is; the thread lives on
        future.set_exception(exc)
    else:
        future.set_result(result)

"""DICOM parsing and rendering in worker processes that can be killed.

A file that makes pydicom spin (deep sequences, absurd lengths, a crafted
compressed stream) must not keep burning a CPU after its request gave up: a
thread cannot be stopped, a process can. Each call runs in one of a few
long-lived spawned workers (pydicom, numpy and Pillow imported once); a call
past its deadline kills its worker, which is replaced on the next call. Running
outside this process also keeps pure-Python parsing off the event loop's GIL
and a MemoryError inside the worker's memory.

Errors travel back as (kind, message) and are raised here again: only the
domain's own errors (UnreadableDicom, NotFound, NotAcceptable) and ValueError cross; anything
else, or a worker that died, is an UnreadableDicom naming what happened."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from domain.errors import NotAcceptable, NotFound, UnreadableDicom

_ERRORS: dict[str, type[Exception]] = {
    "UnreadableDicom": UnreadableDicom,
    "NotFound": NotFound,
    "NotAcceptable": NotAcceptable,
    "ValueError": ValueError,
}


def _serve(conn: Connection) -> None:
    """The worker's loop: one call at a time until the pipe closes."""
    # Imported before saying ready: a call's deadline counts its own work only.
    import numpy  # noqa: F401
    import pydicom  # noqa: F401
    from PIL import Image  # noqa: F401

    import infra.dicom  # noqa: F401  (silences pydicom's logger in this process too)

    conn.send(("ready", None))
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except Exception as exc:  # MemoryError and RecursionError too: sent back as a message
            kind = type(exc).__name__
            reply = (kind if kind in _ERRORS else "other", str(exc) if kind in _ERRORS else kind)
        conn.send(reply)


class _Worker:
    def __init__(self, context: Any):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        try:
            if not self.conn.poll(_START_SECONDS):
                raise EOFError
            self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise UnreadableDicom("The DICOM reader did not start.") from None

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


_START_SECONDS = 60.0


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


class DicomProcesses:
    """At most `workers` calls run at once; a call waits (in a thread, like the
    `asyncio.to_thread` it replaces) for a free worker, started on first use."""

    def __init__(self, workers: int | None = None):
        self._max = workers or default_workers()
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._idle: list[_Worker] = []
        self._started = 0
        self._lock = threading.Condition()
        self._closed = False

    def _take(self) -> _Worker:
        with self._lock:
            while not self._closed and not self._idle and self._started >= self._max:
                self._lock.wait()
            if self._closed:
                raise UnreadableDicom("The DICOM workers are shut down.")
            if self._idle:
                return self._idle.pop()
            self._started += 1
        try:
            return _Worker(self._context)
        except BaseException:
            self._gone()
            raise

    def _give(self, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.kill()
                self._started -= 1
            else:
                self._idle.append(worker)
            self._lock.notify()

    def _gone(self) -> None:
        with self._lock:
            self._started -= 1
            self._lock.notify()

    def _call(self, timeout: float, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        worker = self._take()
        try:
            worker.conn.send((fn, args, kwargs))
            if not worker.conn.poll(timeout):
                raise TimeoutError
            kind, value = worker.conn.recv()
        except TimeoutError:
            worker.kill()
            self._gone()
            raise
        except (EOFError, OSError):
            # The worker died under the file (killed for memory, a crash in a decoder).
            worker.kill()
            self._gone()
            raise UnreadableDicom("The DICOM file could not be read (its reader died).") from None
        self._give(worker)
        if kind == "ok":
            return value
        raise _ERRORS.get(kind, UnreadableDicom)(
            value if kind in _ERRORS else f"The DICOM file could not be read ({value})."
        )

    async def run(
        self, deadline_seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        """`fn(*args, **kwargs)` (a module-level function) in a worker; TimeoutError
        after `deadline_seconds`, its worker killed."""
        return await asyncio.to_thread(self._call, deadline_seconds, fn, args, kwargs)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._started -= len(idle)
            self._lock.notify_all()
        for worker in idle:
            worker.kill()

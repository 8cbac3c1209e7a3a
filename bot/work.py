"""Work that follows an ack (rendering lists, opening modals, Slack calls), off the ack path.

Acks are answered on the request's own thread once the change is committed; everything slow
goes here, on a few threads behind a bounded queue. When the queue is full, `submit` says so
and the ack tells the person the bot is busy: nothing is dropped silently, and a flood of
lists never delays the ack of a status change.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

WORK_THREADS = 4
_STOP = object()


class WorkQueue:
    def __init__(self, limit: int, threads: int = WORK_THREADS) -> None:
        self._jobs: queue.Queue[Any] = queue.Queue(maxsize=limit)
        self._threads = [
            threading.Thread(target=self._run, name=f"work-{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
        """Queue `job(*args, **kwargs)`; False when the queue is full (the caller says the bot
        is busy)."""
        try:
            # In a copy of the caller's context: its log lines carry the request's ids (bot.logs).
            self._jobs.put_nowait((job, args, kwargs, contextvars.copy_context()))
        except queue.Full:
            name = getattr(job, "__name__", type(job).__name__)
            log.warning("work queue full (%d jobs): %s refused", self._jobs.maxsize, name)
            return False
        return True

    def depth(self) -> int:
        return self._jobs.qsize()

    def shutdown(self) -> None:
        """Finish the queued jobs, then stop the threads."""
        for _ in self._threads:
            self._jobs.put((_STOP, (), {}, None))
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        while True:
            job, args, kwargs, context = self._jobs.get()
            if job is _STOP:
                return
            try:
                context.run(job, *args, **kwargs)
            except Exception:  # one failed job must not take a worker thread with it
                log.exception("%s failed after its ack", getattr(job, "__name__", job))

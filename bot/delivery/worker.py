"""Threads that send the outbox as soon as something is due, on every replica.

A change's own rows are sent right after its ack (the listener drains its incident); these
threads send the rest: retries when their back-off ends, rows held by a rate limit when it ends,
and rows whose worker died; and while rows wait out a transient failure, they ask Slack whether
it is back (bot.delivery.recovery). Rows are claimed with SKIP LOCKED and leased, so replicas
share them.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from .outbox import Deliverer

log = logging.getLogger(__name__)

DELIVERY_THREADS = 2
# The longest sleep with nothing due: rows written by another replica are found this late.
IDLE_SECONDS = 2.0
BATCH = 20


class DeliveryWorker:
    def __init__(self, deliverer: Deliverer, threads: int = DELIVERY_THREADS) -> None:
        self.deliverer = deliverer
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(False,), name=f"delivery-{n}", daemon=True)
            for n in range(threads)
        ]
        # Follow-ups' exports have a thread of their own: a tracker slow to answer holds up no
        # Slack update (a change's own drain still sends its incident's export after its cards).
        self._threads.append(
            threading.Thread(target=self._run, args=(True,), name="delivery-exports", daemon=True)
        )

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Let a post in flight be recorded, then stop (a post not recorded would be looked for
        by its tag on the next start, never lost)."""
        self._stop.set()
        self.deliverer.wake()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self, exports: bool) -> None:
        while not self._stop.is_set():
            try:
                self.deliverer.drain(limit=BATCH, exports=exports)
                if not exports:
                    self.deliverer.recovery.probe()
                due = self.deliverer.next_due(exports=exports)
            except SQLAlchemyError as error:  # a lost database must not kill the worker
                log.warning("delivery worker: database error (%s); will try again", error)
                due = None
            if self._stop.is_set():
                return
            seconds = IDLE_SECONDS
            if due is not None:
                seconds = min(max((due - datetime.now(UTC)).total_seconds(), 0.02), IDLE_SECONDS)
            self.deliverer.wait(seconds)

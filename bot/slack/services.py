"""What every listener needs, handed over once (`register(app, services)`) instead of globals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import Deliverer
from bot.incidents import Actor
from bot.settings import Settings
from bot.work import WorkQueue
from db.session import bounded_transaction

# The ack path's transaction gives up on a busy row or a slow statement long before Slack's
# 3-second deadline, so the person is told "busy, try again" instead of seeing a timeout.
LOCK_TIMEOUT = "1s"
STATEMENT_TIMEOUT = "2s"


@dataclass
class Services:
    """What every listener needs, handed over once instead of read from globals."""

    settings: Settings
    sessions: sessionmaker[Session]
    deliverer: Deliverer
    work: WorkQueue

    def actor(self, user_id: str) -> Actor:
        return Actor.of(user_id, self.settings.incident_admins)

    @contextmanager
    def change(self) -> Iterator[Session]:
        """One short transaction for a change acked on the request's thread; commits on exit."""
        with bounded_transaction(
            self.sessions, lock_timeout=LOCK_TIMEOUT, statement_timeout=STATEMENT_TIMEOUT
        ) as session:
            yield session

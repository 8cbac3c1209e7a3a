"""Noticing that Slack answers again, so what waited out an outage goes out within seconds.

A row that failed transiently (a 5xx, a timeout, a dropped connection) backs off on its own
schedule, up to MAX_BACKOFF. That alone would leave a SEV1's updates waiting minutes after Slack
is back; so while such rows wait, Slack is asked something cheap (`api.test`) every
RECOVERY_EVERY, and the first answer (the probe's, or any other call's) makes them all due at once.
The rows are found in the database, so a replica that saw no failure still recovers another's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db.models import Delivery, DeliveryAction

from .calls import pending
from .problems import ACTION_NEEDED_ERRORS, PERMANENT_ERRORS

log = logging.getLogger(__name__)

# How often, at most, Slack is asked whether it is back, or its answers end the rows' waits: a
# place Slack keeps refusing is then not retried at every answer from elsewhere.
RECOVERY_EVERY = timedelta(seconds=3)
# Failures Slack's return does not end: a refusal a person must act on (it waits for them), a
# rate limit (it says when it ends), and what is given up on.
_NOT_PASSING = frozenset({*ACTION_NEEDED_ERRORS, *PERMANENT_ERRORS, "ratelimited"})


def waiting_out_a_failure(now: datetime | None) -> Any:
    """Rows backing off after a failure that ends when Slack answers again: not a refusal a
    person must act on (those wait for them), nor a rate limit (which says when it ends)."""
    return (
        pending()
        & (Delivery.action != DeliveryAction.EXPORT_FOLLOWUP)  # a tracker's, not Slack's
        & (Delivery.attempts > 0)
        & Delivery.last_error.not_in(sorted(_NOT_PASSING))
        & (Delivery.next_attempt_at > (now or func.now()))
    )


class Recovery:
    def __init__(
        self, sessions: sessionmaker[Session], client: WebClient, wake: Callable[[], None]
    ) -> None:
        self.sessions = sessions
        # Its own client, which neither retries nor waits long: a probe into an outage whose
        # connections hang must not keep Slack's return unnoticed for a whole SLACK_TIMEOUT.
        self.client = WebClient(
            base_url=client.base_url,
            timeout=min(client.timeout, int(RECOVERY_EVERY.total_seconds())),
            headers=dict(client.headers),
            retry_handlers=[],
        )
        self.wake = wake
        # A call failed since Slack last answered: the next answer ends the rows' waits.
        self._failed_since_answer = False
        self._lock = threading.Lock()
        self._last = 0.0

    def failed(self, code: str) -> None:
        """A call failed with `code`: if for a passing reason, Slack's next answer ends the wait."""
        if code not in _NOT_PASSING:
            self._failed_since_answer = True

    def answered(self, now: datetime | None = None) -> None:
        """Slack answered a call: if others failed before it, what waits for that is due now."""
        if self._failed_since_answer and self._may_run():
            self._make_due(now)

    def probe(self, now: datetime | None = None) -> bool:
        """While rows wait out a transient failure, ask Slack whether it is back; an answer makes
        them due. True if Slack answered."""
        if not self._may_run():
            return False
        with self.sessions() as session:
            if not session.scalar(select(exists().where(waiting_out_a_failure(now)))):
                return False
        try:
            self.client.api_test()
        except (SlackApiError, OSError, TimeoutError) as error:
            log.debug("Slack's api.test failed (%s): updates keep waiting", error)
            return False
        self._make_due(now)
        return True

    def _may_run(self) -> bool:
        with self._lock:
            if time.monotonic() - self._last < RECOVERY_EVERY.total_seconds():
                return False
            self._last = time.monotonic()
            return True

    def _make_due(self, now: datetime | None) -> None:
        self._failed_since_answer = False
        at = now or datetime.now(UTC)
        with self.sessions.begin() as session:
            count = session.execute(
                update(Delivery)
                .where(waiting_out_a_failure(at))
                .values(next_attempt_at=at)
                .execution_options(synchronize_session=False)
            ).rowcount
        if count:
            log.info("Slack answers again: %d waiting update(s) due now", count)
            self.wake()

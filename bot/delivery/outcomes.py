"""What came of a row's call, and how the row records it: delivered, put back to wait (a rate
limit, too soon to look), retried after a back-off, or given up on. Shared by Slack's calls
(bot.delivery.outbox) and the trackers' (bot.delivery.exports)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from db.models import Delivery, DeliveryAction, Incident, SlackRateLimit

from . import tell
from .calls import delivery_ref
from .problems import ACTION_NEEDED_ERRORS, PERMANENT_ERRORS, Problem

log = logging.getLogger("bot.delivery.outbox")

# Back-off alone: Slack's return is noticed sooner (bot.delivery.recovery).
MAX_BACKOFF = timedelta(minutes=5)
ACTION_NEEDED_BACKOFF = timedelta(minutes=5)


@dataclass
class Outcome:
    ts: str | None = None
    found: bool = False
    note: str | None = None
    error: str | None = None
    retry_after: str | None = None
    # Slack's HTTP 429 (or a tracker's rate limit): only this method in this place waits for
    # Retry-After.
    rate_limited: bool = False
    # The post may have reached Slack: keep the "sending" mark, look before posting again.
    unknown: bool = False
    # Not an attempt: e.g. too soon to look, or Slack's rate limit.
    wait_until: datetime | None = None
    # An incident channel opened (its id is `ts`) or renamed; who could not be invited to it.
    channel_name: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # A tracker's answer: the ticket made or found (key, url); a refusal retrying can't mend.
    ticket: tuple[str, str] | None = None
    permanent: bool = False


@dataclass
class Step:
    problem: Problem | None = None
    found: bool = False
    # Put back to wait (a rate limit, too soon to look): neither delivered nor failed.
    waiting: bool = False


def rate_limited(
    session: Session,
    delivery: Delivery,
    place: str,
    method: str,
    retry_after: str | None,
    now: datetime,
) -> Step:
    """Only this method in this place (a Slack channel, a tracker) waits; the row is not charged
    an attempt."""
    seconds = int(retry_after) if retry_after and retry_after.strip().isdigit() else 1
    until = now + timedelta(seconds=max(seconds, 1))
    session.execute(
        insert(SlackRateLimit)
        .values(channel_id=place, method=method, until=until)
        .on_conflict_do_update(
            index_elements=[SlackRateLimit.channel_id, SlackRateLimit.method],
            set_={"until": func.greatest(SlackRateLimit.until, until)},
        )
    )
    delivery.next_attempt_at = until
    delivery.last_error = "ratelimited"
    log.info("%s to %s rate limited until %s", method, place, f"{until:%H:%M:%S}")
    return Step(waiting=True)


def failed(
    session: Session,
    delivery: Delivery,
    incident: Incident | None,
    code: str,
    now: datetime,
    retry_after: str | None = None,
    channel: str | None = None,
    *,
    permanent: bool = False,
    exporting: str | None = None,
) -> Problem:
    delivery.attempts += 1
    telling = delivery.action == DeliveryAction.TELL_USER
    permanent = (
        permanent
        or code in PERMANENT_ERRORS
        or (telling and tell.gives_up(delivery, code, channel))
    )
    delivery.last_error = code
    if permanent:
        delivery.failed_at = now
        delivery.sending_since = None
    else:
        backoff = min(timedelta(seconds=5 * 2 ** (delivery.attempts - 1)), MAX_BACKOFF)
        if code in ACTION_NEEDED_ERRORS:
            backoff = max(backoff, ACTION_NEEDED_BACKOFF)
        if retry_after and retry_after.strip().isdigit():
            backoff = max(backoff, timedelta(seconds=int(retry_after)))
        delivery.next_attempt_at = now + backoff
    ref = delivery_ref(delivery, incident)
    if exporting is None:
        channel = channel or (
            incident.slack_channel_id if incident else delivery.payload.get("channel")
        )
    log.warning(
        "delivery %d (%s) of %s to %s failed: %s (%s)",
        delivery.id,
        delivery.action.value,
        exporting or ref,
        channel,
        code,
        "permanent" if permanent else f"retry at {delivery.next_attempt_at:%H:%M:%S}",
    )
    return Problem(
        incident_ref=ref,
        channel=channel,
        error=code,
        permanent=permanent,
        opening_channel=delivery.action == DeliveryAction.OPEN_CHANNEL,
        telling=telling,
        exporting=exporting,
    )

"""Structured updates: what is known, the customers' impact, maybe a new status, and when the
next update will come; the promise kept by nudging the lead and the comms role when it is late."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import IncidentEvent, Status

from .vocabulary import Actor

log = logging.getLogger("bot.incidents")

SUMMARY_MAX = 3_000
IMPACT_MAX = 1_000
# "next update in" choices when UPDATE_INTERVALS is not set; "none" is always offered too.
DEFAULT_INTERVALS = (
    timedelta(minutes=15),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=4),
)


@dataclass
class UpdateDraft:
    summary: str
    impact: str | None = None
    # None or the current status: the update moves nothing.
    status: str | Status | None = None
    # One of the allowed intervals, or None: no promise (the severity's reminders come back).
    next_update_in: timedelta | None = None
    # Needed when the update resolves (or closes an active incident), as for change_status.
    resolution: str | None = None
    cause: str | None = None


# --- Interface for the other surfaces (bodies: helper "updates") -------------------------------


def post_update(
    session: Session,
    incident_id: int | str,
    draft: UpdateDraft,
    actor: Actor,
    *,
    intervals: Sequence[timedelta] = DEFAULT_INTERVALS,
    expected_status: Status | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Record one STATUS_UPDATE event (text = summary; details: impact, next_update_in seconds,
    next_update_at, cause, resolution; field/from/to = status when it moved) and return it.

    Rules: summary required (at most SUMMARY_MAX), impact at most IMPACT_MAX (InvalidInput with
    the field name: summary, impact, status, next_update, resolution, cause); a status move obeys
    every rule change_status obeys (the workflow's table, resolution required to resolve, closed
    is final for non-admins, `expected_status`); `next_update_in` must be one of `intervals`.
    Effects: next_update_at/update_nudge_at = now + next_update_in (or both None); the card,
    pinned summary and welcome edited; one reply in the thread and one in the channel; a DM to
    every subscriber but the actor (recording.notify does this for STATUS_UPDATE and
    STATUS_CHANGED events)."""
    raise NotImplementedError


def latest_update(session: Session, incident_id: int) -> IncidentEvent | None:
    """The incident's last STATUS_UPDATE event (the card and pages show its summary)."""
    raise NotImplementedError


def is_overdue(next_update_at: datetime | None, now: datetime) -> bool:
    return next_update_at is not None and next_update_at <= now


def nudge_overdue(session: Session, incident_id: int, *, now: datetime) -> None:
    """The scheduler, for an active incident whose update_nudge_at has passed: an UPDATE_OVERDUE
    event (not posted in the thread), a DM with an Update button to the lead and the `comms`
    role holder (each once; the reporter when there is neither), the card edited to show it
    overdue, and update_nudge_at moved one promised interval on."""
    raise NotImplementedError

"""Reminders: when an active incident's owner is next nudged, and snoozing that (and the
nudges of a promised update)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from db.models import (
    EventKind,
    Incident,
)

from .recording import (
    audit,
    lock_incident,
    notify,
    record_event,
)
from .validation import (
    _now,
)
from .vocabulary import (
    SYSTEM,
    Actor,
    InvalidInput,
    format_incident_id,
)
from .workflow import (
    ACTIVE_STATUSES,
)

log = logging.getLogger("bot.incidents")


def remind(
    session: Session, incident: Incident, *, now: datetime, next_at: datetime | None
) -> None:
    """Post a "no update for a while" reminder (the scheduler calls this on a locked row).

    A reminder is not an update: it leaves `updated_at` alone and sets when the next one is due.
    """
    silent = now - incident.updated_at
    event = record_event(
        session,
        incident,
        EventKind.REMINDER,
        SYSTEM,
        now,
        details={
            "who": incident.owner or incident.reporter,
            "silent_minutes": int(silent.total_seconds() // 60),
        },
    )
    incident.next_reminder_at = next_at
    notify(session, incident, [event], now=now, card=False)
    audit(
        session,
        log,
        "%s reminder to %s after %s without an update",
        format_incident_id(incident.id),
        incident.owner or incident.reporter,
        silent,
    )


SNOOZE_MAX = timedelta(days=7)


def snooze_reminders(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    duration: timedelta,
    *,
    now: datetime | None = None,
) -> Incident:
    now = _now(now)
    if not timedelta(minutes=1) <= duration <= SNOOZE_MAX:
        raise InvalidInput("Reminders can be snoozed for a minute to a week.", "snooze")
    incident = lock_incident(session, incident_id)
    if incident.status not in ACTIVE_STATUSES:
        raise InvalidInput(
            f"{format_incident_id(incident.id)} is {incident.status.value}: no reminders to snooze."
        )
    until = now + duration
    incident.next_reminder_at = until
    if incident.next_update_at is not None:
        # A promised update's nudges wait for the snooze too (never sooner than they were due).
        due = incident.update_nudge_at
        incident.update_nudge_at = until if due is None or due < until else due
    event = record_event(
        session,
        incident,
        EventKind.REMINDERS_SNOOZED,
        actor,
        now,
        to_value=until.isoformat(),
    )
    notify(session, incident, [event], now=now, card=False)
    audit(
        session,
        log,
        "%s reminders snoozed until %s by %s",
        format_incident_id(incident.id),
        until,
        actor.user_id,
    )
    return incident

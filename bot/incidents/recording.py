"""Recording a change: its timeline event and the outbox rows that will tell Slack, in the
caller's transaction; the row lock every change takes first; and setting plain fields."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentSubscriber,
    Status,
)

from .validation import _now
from .vocabulary import (
    Actor,
    Busy,
    NotFound,
    PermissionDenied,
    format_incident_id,
    parse_incident_id,
)
from .workflow import _require_kept_resolution

log = logging.getLogger("bot.incidents")

# --- The audit log: one line per change, written once it is committed --------------------------

_AUDIT = "incident_audit_lines"


def audit(session: Session, logger: logging.Logger, message: str, *args: Any) -> None:
    """Log `message` (at INFO) when the caller's transaction commits, and never if it rolls back:
    a change refused after this point (by a later rule, a lock timeout, a failed commit) must not
    read as done in the log."""
    session.info.setdefault(_AUDIT, []).append((logger, message, args))


@event.listens_for(Session, "after_commit")
def _write_audit(session: Session) -> None:
    for logger, message, args in session.info.pop(_AUDIT, ()):
        logger.info(message, *args)


@event.listens_for(Session, "after_rollback")
def _drop_audit(session: Session) -> None:
    session.info.pop(_AUDIT, None)


# --- Recording changes: timeline event + outbox, in the caller's transaction -------------------


def record_event(
    session: Session,
    incident: Incident,
    kind: EventKind,
    actor: Actor,
    now: datetime,
    **values: Any,
) -> IncidentEvent:
    event = IncidentEvent(
        incident=incident,
        kind=kind,
        actor=actor.user_id,
        occurred_at=values.pop("occurred_at", None) or now,
        recorded_at=now,
        **values,
    )
    session.add(event)
    return event


def touch(incident: Incident, now: datetime) -> None:
    """Record that the incident was updated: it resets the wait for the next reminder. A
    promised next update (next_update_at) stays: only the next structured update changes it."""
    incident.updated_at = now
    incident.next_reminder_at = None


def notify(
    session: Session,
    incident: Incident,
    events: Sequence[IncidentEvent],
    *,
    now: datetime,
    card: bool = True,
    thread: bool = True,
    channel: bool = True,
) -> None:
    """Queue the card edit and one reply for `events`, in the card's thread and in the
    incident's own channel if it has one (nothing of these when there is no card; `thread` and
    `channel` False leave out that reply: both, the card and pinned summary are only edited);
    and, for a status change or a structured update, one DM to each subscriber but whoever made
    it (with or without a card: a web-only incident's subscribers want to know too).

    The rows are due at `now`, the change's own time, so a drain right after it sends them.
    """
    session.flush()  # event ids, for the outbox and for callers that show them
    if not events:
        return
    if incident.slack_channel_id is not None:
        _post_later(session, incident, events, now, card=card, thread=thread, channel=channel)
    if any(e.kind in _TOLD_TO_SUBSCRIBERS for e in events):
        actors = {e.actor for e in events}
        for user_id in subscriber_ids(session, incident.id):
            if user_id not in actors:
                dm_later(session, incident, user_id, DM_SUBSCRIBER, events, now)


def _post_later(
    session: Session,
    incident: Incident,
    events: Sequence[IncidentEvent],
    now: datetime,
    *,
    card: bool,
    thread: bool,
    channel: bool,
) -> None:
    if card:
        edits = [DeliveryAction.UPDATE_CARD]
        if incident.wants_own_channel:
            edits.append(DeliveryAction.UPDATE_CHANNEL)
        session.add_all(
            Delivery(incident_id=incident.id, action=edit, next_attempt_at=now) for edit in edits
        )
    replies = [DeliveryAction.POST_THREAD] if thread else []
    if channel and incident.wants_own_channel:
        replies.append(DeliveryAction.POST_CHANNEL)
    for action in replies:
        session.add(
            Delivery(
                incident_id=incident.id,
                event_id=events[0].id,
                action=action,
                payload={"event_ids": [e.id for e in events]},
                next_attempt_at=now,
            )
        )


# What a person's DM is about (bot.delivery.tell renders it from the events when it is sent).
DM_ROLE, DM_SUBSCRIBER, DM_NUDGE = "role", "subscriber", "nudge"
# The events an incident's subscribers are told of by DM (a resolution is a status change).
_TOLD_TO_SUBSCRIBERS = frozenset({EventKind.STATUS_UPDATE, EventKind.STATUS_CHANGED})


def subscriber_ids(session: Session, incident_id: int) -> list[str]:
    """The incident's subscribers, in the order they subscribed (bot.incidents.subscribers)."""
    return list(
        session.scalars(
            select(IncidentSubscriber.user_id)
            .where(IncidentSubscriber.incident_id == incident_id)
            .order_by(IncidentSubscriber.created_at, IncidentSubscriber.user_id)
        )
    )


def dm_later(
    session: Session,
    incident: Incident,
    user_id: str,
    about: str,
    events: Sequence[IncidentEvent],
    now: datetime,
) -> Delivery:
    """Queue a DM to a person about `events` of the incident: a tell row (bot.delivery.tell) with
    no text of its own, worded by the surface when it is sent. Rows of one person go in order."""
    session.flush()
    row = Delivery(
        incident_id=incident.id,
        event_id=events[0].id if events else None,
        action=DeliveryAction.TELL_USER,
        payload={
            "user": user_id,
            "via": "dm",
            "about": about,
            "event_ids": [e.id for e in events],
            "ref": format_incident_id(incident.id),
        },
        next_attempt_at=now,
    )
    session.add(row)
    return row


# PostgreSQL's lock_not_available and query_canceled: what a caller's lock_timeout and
# statement_timeout end a wait with.
_TIMED_OUT = {"55P03", "57014"}


def is_busy(error: OperationalError) -> bool:
    """Whether the database gave up waiting (for a lock, or a statement) rather than failing."""
    return getattr(error.orig, "pgcode", None) in _TIMED_OUT


def lock_incident(session: Session, incident_id: object) -> Incident:
    number = parse_incident_id(incident_id)
    try:
        incident = session.execute(
            select(Incident)
            .where(Incident.id == number)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    except OperationalError as error:
        if is_busy(error):
            raise Busy() from error
        raise
    if incident is None:
        raise NotFound(f"There is no incident {format_incident_id(number)}.")
    return incident


def may_edit(incident: Incident, actor: Actor) -> bool:
    """Whether `actor` may change the incident's fields, severity, people and notes."""
    return incident.status != Status.CLOSED or actor.is_admin


def _require_editable(incident: Incident, actor: Actor) -> None:
    if not may_edit(incident, actor):
        raise PermissionDenied(
            f"{format_incident_id(incident.id)} is closed; only an incident admin can change it."
        )


def _set_fields(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    values: dict[str, str | None],
    kind: EventKind,
    now: datetime | None,
) -> tuple[Incident, list[IncidentEvent]]:
    """Lock the incident and set `values` (already clean); an event for each field that changed,
    and the card and thread told once for all of them."""
    now = _now(now)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    _require_kept_resolution(incident, values)
    events = []
    for name, value in values.items():
        old = getattr(incident, name)
        if old == value:
            continue
        setattr(incident, name, value)
        events.append(
            record_event(
                session, incident, kind, actor, now, field=name, from_value=old, to_value=value
            )
        )
    if events:
        touch(incident, now)
        notify(session, incident, events, now=now)
    return incident, events

"""Changing follow-ups: add, change, done or won't do, export to the tracker, and what the
tracker says back."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    FollowUp,
    FollowUpStatus,
    Incident,
)

from ..recording import audit, dm_later, is_busy, lock_incident, notify, record_event
from ..validation import _clean, _clean_user, _now
from ..vocabulary import (
    Actor,
    Busy,
    Conflict,
    InvalidInput,
    NotFound,
    format_incident_id,
)
from .rules import (
    DM_FOLLOWUP_ASSIGNED,
    DUE_HINT,
    STATUS_LABELS,
    FollowUpDraft,
    FollowUpRules,
    _clean_followup_title,
    _clean_priority,
    check_due,
    format_followup_id,
    parse_followup_id,
    parse_followup_status,
)

log = logging.getLogger(__name__)


def _lock_followup(session: Session, followup_id: int | str) -> FollowUp:
    """The follow-up and its incident, both locked (the incident first, as every change does)."""
    number = parse_followup_id(followup_id)
    incident_id = session.scalar(select(FollowUp.incident_id).where(FollowUp.id == number))
    if incident_id is None:
        raise NotFound(f"There is no follow-up {format_followup_id(number)}.")
    lock_incident(session, incident_id)
    try:
        followup = session.execute(
            select(FollowUp)
            .where(FollowUp.id == number)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
    except OperationalError as error:
        if is_busy(error):
            raise Busy() from error
        raise
    if followup is None:  # deleted with its incident in between
        raise NotFound(f"There is no follow-up {format_followup_id(number)}.")
    return followup


def _details(followup: FollowUp, **more: Any) -> dict[str, Any]:
    return {"followup_id": followup.id, "title": followup.title, **more}


def _tell_owner(
    session: Session, incident: Incident, followup: FollowUp, actor: Actor, event: Any, now
) -> None:
    """DM the owner a follow-up now theirs, unless they gave it to themselves."""
    if followup.owner is None or followup.owner == actor.user_id:
        return
    row = dm_later(session, incident, followup.owner, DM_FOLLOWUP_ASSIGNED, [event], now)
    row.payload = {**row.payload, "followup_id": followup.id}


def _queue_export(session: Session, incident: Incident, followup: FollowUp, tracker: str, now):
    followup.export_requested_at = now
    followup.tracker = tracker
    session.add(
        Delivery(
            incident_id=incident.id,
            action=DeliveryAction.EXPORT_FOLLOWUP,
            payload={"followup_id": followup.id, "tracker": tracker},
            next_attempt_at=now,
        )
    )


def add_followup(
    session: Session,
    incident_id: int | str,
    draft: FollowUpDraft,
    actor: Actor,
    rules: FollowUpRules,
    *,
    now: datetime | None = None,
) -> FollowUp:
    """Add a follow-up to an incident (closed ones too): a FOLLOWUP_ADDED event, the card and
    summary edited and the thread told, a DM to the owner if someone else named them, and with
    auto export and a tracker an export queued."""
    now = _now(now)
    title = _clean_followup_title(draft.title)
    owner = _clean_user(draft.owner, "owner")
    priority = _clean_priority(draft.priority, rules)
    due_on = check_due(draft.due_on, now.date()) if draft.due_on is not None else None
    permalink = _clean(draft.source_permalink, "source", 2000, label="Source link")
    incident = lock_incident(session, incident_id)
    followup = FollowUp(
        incident_id=incident.id,
        title=title,
        owner=owner,
        due_on=due_on,
        priority=priority,
        status=FollowUpStatus.OPEN,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
        source_permalink=permalink,
    )
    session.add(followup)
    session.flush()
    event = record_event(
        session,
        incident,
        EventKind.FOLLOWUP_ADDED,
        actor,
        now,
        text=title,
        details=_details(
            followup,
            owner=owner,
            due_on=due_on.isoformat() if due_on else None,
            priority=priority,
        ),
    )
    notify(session, incident, [event], now=now)
    _tell_owner(session, incident, followup, actor, event, now)
    # Private incidents (issue 26) will be left out here: their follow-ups are exported by hand.
    if rules.auto_export and rules.tracker is not None:
        _queue_export(session, incident, followup, rules.tracker, now)
    audit(
        session,
        log,
        "%s %s added by %s (owner %s, due %s)",
        format_incident_id(incident.id),
        format_followup_id(followup.id),
        actor.user_id,
        owner,
        due_on,
    )
    return followup


_UNSET: object = object()


def change_followup(
    session: Session,
    followup_id: int | str,
    actor: Actor,
    rules: FollowUpRules,
    *,
    title: object = _UNSET,
    owner: object = _UNSET,
    due_on: object = _UNSET,
    priority: object = _UNSET,
    now: datetime | None = None,
) -> FollowUp:
    """Change what was given (a FOLLOWUP_CHANGED event per field that changed); a new owner is
    DMed. None clears owner or due date."""
    now = _now(now)
    values: dict[str, Any] = {}
    if title is not _UNSET:
        values["title"] = _clean_followup_title(title if isinstance(title, str) else None)
    if owner is not _UNSET:
        values["owner"] = _clean_user(owner if isinstance(owner, str) else None, "owner")
    if priority is not _UNSET:
        values["priority"] = _clean_priority(priority if isinstance(priority, str) else None, rules)
    if due_on is not _UNSET:
        if due_on is not None and not isinstance(due_on, date):
            raise InvalidInput(DUE_HINT, "due")
        values["due_on"] = due_on
    followup = _lock_followup(session, followup_id)
    if values.get("due_on") is not None and values["due_on"] != followup.due_on:
        check_due(values["due_on"], now.date())
    incident = session.get_one(Incident, followup.incident_id)
    events = []
    for name, value in values.items():
        old = getattr(followup, name)
        if old == value:
            continue
        setattr(followup, name, value)
        events.append(
            record_event(
                session,
                incident,
                EventKind.FOLLOWUP_CHANGED,
                actor,
                now,
                field=name,
                from_value=_shown(old),
                to_value=_shown(value),
                details=_details(followup),
            )
        )
    if not events:
        return followup
    followup.updated_at = now
    notify(session, incident, events, now=now, thread=False, channel=False)
    if "owner" in values and any(e.field == "owner" for e in events):
        _tell_owner(session, incident, followup, actor, events[-1], now)
    audit(
        session,
        log,
        "%s %s changed by %s: %s",
        format_incident_id(incident.id),
        format_followup_id(followup.id),
        actor.user_id,
        ", ".join(e.field or "" for e in events),
    )
    return followup


def _shown(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, date) else str(value)


def _set_status(
    session: Session, followup: FollowUp, status: FollowUpStatus, by: Actor, now: datetime
) -> bool:
    if followup.status == status:
        return False
    incident = session.get_one(Incident, followup.incident_id)
    old = followup.status
    followup.status = status
    followup.updated_at = now
    followup.closed_by = None if status == FollowUpStatus.OPEN else by.user_id
    followup.closed_at = None if status == FollowUpStatus.OPEN else now
    event = record_event(
        session,
        incident,
        EventKind.FOLLOWUP_CHANGED,
        by,
        now,
        field="status",
        from_value=old.value,
        to_value=status.value,
        details=_details(followup),
    )
    notify(session, incident, [event], now=now)
    audit(
        session,
        log,
        "%s %s %s by %s",
        format_incident_id(incident.id),
        format_followup_id(followup.id),
        STATUS_LABELS[status],
        by.user_id,
    )
    return True


def set_followup_status(
    session: Session,
    followup_id: int | str,
    status: FollowUpStatus | str,
    actor: Actor,
    *,
    now: datetime | None = None,
) -> FollowUp:
    """Mark a follow-up done, won't do, or open again; records who and when. Marking it what it
    already is says so (Conflict), so a second click on a Done button isn't a silent success."""
    new = parse_followup_status(status)
    followup = _lock_followup(session, followup_id)
    if not _set_status(session, followup, new, actor, _now(now)):
        raise Conflict(f"{format_followup_id(followup.id)} is already {STATUS_LABELS[new]}.")
    return followup


def request_export(
    session: Session,
    followup_id: int | str,
    actor: Actor,
    rules: FollowUpRules,
    *,
    now: datetime | None = None,
) -> FollowUp:
    """Queue the follow-up's export to the tracker (one EXPORT_FOLLOWUP row, ever: a second
    request while one is queued or done is refused with the ticket's link). InvalidInput when no
    tracker is configured."""
    if rules.tracker is None:
        raise InvalidInput(
            "No tracker is set up (FOLLOWUP_TRACKER), so follow-ups can't be exported.", "tracker"
        )
    now = _now(now)
    followup = _lock_followup(session, followup_id)
    ref = format_followup_id(followup.id)
    if followup.ticket_url is not None:
        raise Conflict(f"{ref} is already exported: {followup.ticket_url}")
    if followup.export_requested_at is not None:
        raise Conflict(f"{ref} is already being exported; its ticket's link will show here.")
    incident = session.get_one(Incident, followup.incident_id)
    _queue_export(session, incident, followup, rules.tracker, now)
    audit(
        session,
        log,
        "%s %s export to %s requested by %s",
        format_incident_id(incident.id),
        ref,
        rules.tracker,
        actor.user_id,
    )
    return followup


def record_ticket(
    session: Session, followup_id: int, tracker: str, key: str, url: str, *, now: datetime
) -> FollowUp:
    """The export made (or found) the ticket: store it, a FOLLOWUP_EXPORTED event, the card and
    summary edited. Called by the outbox when the export succeeded."""
    followup = _lock_followup(session, followup_id)
    if followup.ticket_key == key and followup.tracker == tracker:
        return followup
    followup.tracker, followup.ticket_key, followup.ticket_url = tracker, key, url
    followup.ticket_checked_at = now
    incident = session.get_one(Incident, followup.incident_id)
    event = record_event(
        session,
        incident,
        EventKind.FOLLOWUP_EXPORTED,
        SYSTEM_TRACKER,
        now,
        to_value=url,
        details=_details(followup, key=key, tracker=tracker),
    )
    notify(session, incident, [event], now=now, thread=False, channel=False)
    audit(
        session,
        log,
        "%s %s exported to %s as %s",
        format_incident_id(incident.id),
        format_followup_id(followup.id),
        tracker,
        key,
    )
    return followup


SYSTEM_TRACKER = Actor("system")


def ticket_state(
    session: Session,
    tracker: str,
    key: str,
    status: FollowUpStatus,
    *,
    by: str,
    now: datetime | None = None,
) -> FollowUp | None:
    """The tracker says the ticket `key` is closed (done, or won't do) or open again (webhook or
    poll): set the follow-up's status if it differs. None when no follow-up has that ticket.
    Idempotent: a repeated webhook changes nothing. `by` names who closed it there."""
    now = _now(now)
    followup_id = session.scalar(
        select(FollowUp.id).where(FollowUp.tracker == tracker, FollowUp.ticket_key == key)
    )
    if followup_id is None:
        return None
    followup = _lock_followup(session, followup_id)
    followup.ticket_checked_at = now
    _set_status(session, followup, status, Actor(by), now)
    return followup

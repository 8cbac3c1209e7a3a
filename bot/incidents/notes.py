"""Notes on the timeline: added (from a command, a form, a message), linked to their source
message, and deleted (the timeline keeps that one existed)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EventKind, IncidentEvent

from .queries import noted_from
from .recording import _require_editable, audit, lock_incident, notify, record_event, touch
from .validation import _check_occurred_at, _clean, _now
from .vocabulary import (
    NOTE_MAX,
    Actor,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    format_incident_id,
    parse_incident_id,
)

log = logging.getLogger("bot.incidents")


def add_note(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    text: str,
    *,
    occurred_at: datetime | None = None,
    source_url: str | None = None,
    source: str | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Add a note to the timeline, stamped at `occurred_at` (e.g. a Slack message's time);
    `source` names the message it is taken from, which makes one note at most."""
    body = _clean(text, "note", NOTE_MAX, label="Note")
    if body is None:
        raise InvalidInput("A note needs some text.", "note")
    now = _now(now)
    _check_occurred_at(occurred_at, now)
    incident = lock_incident(session, incident_id)
    _require_editable(incident, actor)
    if source is not None and noted_from(session, incident.id, source):
        raise Conflict(f"That message is already a note of {format_incident_id(incident.id)}.")
    details = {"source_url": source_url} if source_url else {}
    if source is not None:
        details["source"] = source
    event = record_event(
        session,
        incident,
        EventKind.NOTE,
        actor,
        now,
        text=body,
        occurred_at=occurred_at,
        details=details,
    )
    touch(incident, now)
    notify(session, incident, [event], now=now)
    audit(session, log, "%s note added by %s", format_incident_id(incident.id), actor.user_id)
    return event


def link_note_source(session: Session, note_id: int, source_url: str) -> None:
    """Record where a note came from (a message's permalink, known only after the note)."""
    note = session.get(IncidentEvent, note_id)
    if note is None or note.kind != EventKind.NOTE:
        raise NotFound(f"There is no note {note_id}.")
    note.details = {**note.details, "source_url": source_url}


def delete_note(
    session: Session,
    note_id: int | None,
    actor: Actor,
    *,
    incident_id: int | str | None = None,
    now: datetime | None = None,
) -> IncidentEvent:
    """Remove a note's text; the timeline keeps that it existed and who deleted it.

    `incident_id` is the incident the person named (a page's or an API path's): a note of
    another incident is not found there, rather than deleted from where it is.
    """
    if note_id is None:
        raise NotFound("That is not a note of any incident.")
    named = None if incident_id is None else parse_incident_id(incident_id)
    now = _now(now)
    note = session.execute(
        select(IncidentEvent)
        .where(IncidentEvent.id == note_id, IncidentEvent.kind == EventKind.NOTE)
        .with_for_update()
    ).scalar_one_or_none()
    if note is None or named not in (None, note.incident_id):
        if named is None:
            raise NotFound(f"There is no note {note_id}.")
        raise NotFound(f"{format_incident_id(named)} has no note {note_id}.")
    if note.deleted_at is not None:
        raise NotFound(f"Note {note_id} was already deleted.")
    if not actor.may_remove(note.actor):
        raise PermissionDenied("Only the note's author or an incident admin can delete it.")
    incident = lock_incident(session, note.incident_id)
    _require_editable(incident, actor)
    note.deleted_at = now
    note.deleted_by = actor.user_id
    note.text = None
    event = record_event(
        session, incident, EventKind.NOTE_DELETED, actor, now, details={"note_id": note.id}
    )
    touch(incident, now)
    notify(session, incident, [event], now=now)
    audit(
        session,
        log,
        "%s note %d deleted by %s",
        format_incident_id(incident.id),
        note_id,
        actor.user_id,
    )
    return event

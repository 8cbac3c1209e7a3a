"""/api/v1/incidents/{id}/notes and /timeline: what happened, as the card's thread tells it."""

from __future__ import annotations

from typing import Any

from bot import incidents
from bot.web import schemas
from bot.web.api_common import JSON_BODY_ERRORS, NOTE_ID, bp, event_body, note_body
from bot.web.auth import api_auth, current_actor, services
from db.models import EventKind


@bp.get("/incidents/<incident_id>/notes")
@bp.auth_required(api_auth)
@bp.output(schemas.NoteList)
@bp.doc(tags=["Notes and timeline"])
def list_notes(incident_id: str) -> dict[str, Any]:
    """An incident's notes, oldest first (deleted ones are left out)"""
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        events = incidents.timeline(session, incident.id)
        notes = [e for e in events if e.kind == EventKind.NOTE and e.deleted_at is None]
        return {"items": [note_body(note) for note in notes]}


@bp.post("/incidents/<incident_id>/notes")
@bp.auth_required(api_auth)
@bp.input(schemas.NoteCreate, location="json", arg_name="body")
@bp.output(schemas.Note, status_code=201, description="Added; the card's thread shows it")
@bp.doc(tags=["Notes and timeline"], responses=JSON_BODY_ERRORS)
def add_note(incident_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add a note to an incident's timeline"""
    with services().change() as session:
        note = incidents.add_note(session, incident_id, current_actor(), body["text"])
        return note_body(note)


@bp.delete(f"/incidents/<incident_id>/notes/{NOTE_ID}")
@bp.auth_required(api_auth)
@bp.output({}, status_code=204, description="Deleted; the timeline keeps that it existed")
@bp.doc(
    tags=["Notes and timeline"],
    responses={403: "Only the note's author or an incident admin may delete it"},
)
def delete_note(incident_id: str, note_id: int) -> tuple[str, int]:
    """Delete a note (its author or an admin)"""
    with services().change() as session:
        incidents.delete_note(session, note_id, current_actor(), incident_id=incident_id)
    return "", 204


@bp.get("/incidents/<incident_id>/timeline")
@bp.auth_required(api_auth)
@bp.output(schemas.Timeline)
@bp.doc(tags=["Notes and timeline"])
def get_timeline(incident_id: str) -> dict[str, Any]:
    """Every event of an incident, oldest first"""
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        return {"items": [event_body(e) for e in incidents.timeline(session, incident.id)]}

"""/api/v1/incidents and /api/v1/intake: list, declare, read, change, move and delete incidents,
and declare from alerts."""

from __future__ import annotations

from typing import Any

from bot import incidents
from bot.incidents import review
from bot.web import schemas
from bot.web.api_common import (
    CHANGE_ERRORS,
    JSON_BODY_ERRORS,
    api_url,
    bp,
    incident_body,
    incident_query,
    note_body,
    summary,
)
from bot.web.auth import api_auth, current_actor, services


@bp.get("/incidents")
@bp.auth_required(api_auth)
@bp.input(schemas.IncidentListQuery, location="query", arg_name="args")
@bp.output(schemas.IncidentList)
def list_incidents(args: dict[str, Any]) -> dict[str, Any]:
    """List incidents: filters, search, sort and pages"""
    query = incident_query(args)
    with services().read() as session:
        page = incidents.list_incidents(session, query)
    return {
        "items": [summary(row) for row in page.items],
        "total": page.total,
        "total_is_exact": page.total_is_exact,
        "page": page.page,
        "limit": page.page_size,
        "has_next": page.has_next,
    }


@bp.post("/incidents")
@bp.auth_required(api_auth)
@bp.input(schemas.IncidentCreate, location="json", arg_name="body")
@bp.output(schemas.IncidentDetail, status_code=201, description="Declared")
@bp.doc(responses=JSON_BODY_ERRORS)
def create_incident(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Declare an incident

    As in Slack: its card goes to INCIDENT_CHANNEL, serious incidents get their own channel, and
    people (not tokens) are held to DECLARE_LIMIT.
    """
    actor = current_actor()
    web = services()
    with web.change() as session:
        incident = web.declare(session, incidents.IncidentDraft(**body), actor)
        shown = incident_body(session, incident, actor)
    return shown, {"Location": api_url(shown["id"])}


@bp.get("/incidents/<incident_id>")
@bp.auth_required(api_auth)
@bp.output(schemas.IncidentDetail)
def get_incident(incident_id: str) -> dict[str, Any]:
    """An incident: every fact, its milestones and where the asker may move it next

    The id is `12` or `INC-12`.
    """
    actor = current_actor()
    with services().read() as session:
        return incident_body(session, incidents.get_incident(session, incident_id), actor)


@bp.patch("/incidents/<incident_id>")
@bp.auth_required(api_auth)
@bp.input(schemas.IncidentPatch, location="json", arg_name="body")
@bp.output(schemas.IncidentDetail)
@bp.doc(responses=CHANGE_ERRORS)
def update_incident(incident_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change some of an incident's fields, or its review's

    Only the fields sent change, all in one transaction; a field sent with its current value is
    left alone. `null` clears an optional field or unassigns. The review's fields
    (`impact_started_at` to `reviewer`) may change on a closed incident too.
    """
    actor = current_actor()
    web = services()
    reviewed = {name: body.pop(name) for name in review.REVIEW_FIELDS if name in body}
    with web.change() as session:
        incident = None
        if body:
            incident = incidents.update(
                session, incident_id, actor, body, categories=web.settings.categories
            )
        if reviewed:
            target = incident.id if incident is not None else incident_id
            incident, _ = review.edit_review(session, target, actor, reviewed)
        assert incident is not None  # the schema wants at least one field
        return incident_body(session, incident, actor)


@bp.post("/incidents/<incident_id>/status")
@bp.auth_required(api_auth)
@bp.input(schemas.StatusChange, location="json", arg_name="body")
@bp.output(schemas.IncidentDetail)
@bp.doc(responses=CHANGE_ERRORS)
def change_status(incident_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Move an incident along the workflow

    `allowed_next_statuses` of the incident says where it may go; reopening a closed incident
    is for admins. Closing waits for what CLOSE_REQUIRES asks (by default every follow-up with
    an owner and a due date): 422 says what is missing, and an admin may close anyway with an
    `override` reason.
    """
    actor = current_actor()
    web = services()
    with web.change() as session:
        incident = incidents.change_status(
            session,
            incident_id,
            body["status"],
            actor,
            note=body.get("note"),
            cause=body.get("cause"),
            resolution=body.get("resolution"),
            followup_rules=web.settings.followup_rules,
            override=body.get("override"),
        )
        return incident_body(session, incident, actor)


@bp.delete("/incidents/<incident_id>")
@bp.auth_required(api_auth)
@bp.output({}, status_code=204, description="Deleted, with its timeline and screenshots")
@bp.doc(responses={403: "Only incident admins may delete incidents"})
def delete_incident(incident_id: str) -> tuple[str, int]:
    """Delete an incident (admins only)"""
    with services().change() as session:
        incidents.delete_incident(session, incident_id, current_actor())
    return "", 204


@bp.post("/intake")
@bp.auth_required(api_auth)
@bp.input(schemas.IntakeAlert, location="json", arg_name="alert")
@bp.output(schemas.IntakeOutcome, status_code=201, description="A new incident was declared")
@bp.doc(
    tags=["Alerts"],
    responses={
        **JSON_BODY_ERRORS,
        200: {
            "description": "Its incident is still active: the alert was noted on it",
            "content": {"application/json": {"schema": schemas.IntakeOutcome}},
        },
    },
)
def intake(alert: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Declare an incident from an alert, once per problem

    While the incident declared for a `fingerprint` is active, the same fingerprint adds a note
    to it ("Alert fired again") instead of declaring another.
    """
    actor = current_actor()
    web = services()
    with web.change() as session:
        result = incidents.intake(
            session, incidents.IntakeAlert(**alert), actor, declare=web.declare
        )
        shown = {
            "created": result.created,
            "incident": incident_body(session, result.incident, actor),
            "note": note_body(result.note) if result.note is not None else None,
        }
    if result.created:
        return shown, 201, {"Location": api_url(result.incident.id)}
    return shown, 200, {}

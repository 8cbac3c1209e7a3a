"""/api/v1/incidents/{id}/followups and /api/v1/followups: the action items after an incident,
their owners and due dates, marking them done, and exporting them to the team's tracker.

A closed incident's follow-ups stay editable: closed freezes the incident, not the work after it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot import incidents
from bot.incidents import followups
from bot.web import schemas_followups as schemas
from bot.web.api_common import JSON_BODY_ERRORS, bp
from bot.web.auth import api_auth, current_actor, services
from bot.web.links import link
from db.models import FollowUp, FollowUpStatus

TAG = "Follow-ups"
CHANGE_ERRORS = {
    **JSON_BODY_ERRORS,
    403: "Not allowed to this asker",
    409: "Its state forbids it (e.g. changed by someone else meanwhile)",
}


def today() -> date:
    """Today in TIMEZONE: what "overdue" and "in 2w" count from."""
    return datetime.now(services().settings.timezone).date()


def followup_url(followup: FollowUp) -> str:
    """The follow-up on its incident's page."""
    ref = followups.format_followup_id(followup.id)
    return link("pages.incident_page", incident_id=followup.incident_id, _anchor=ref)


def followup_body(followup: FollowUp, on: date) -> dict[str, Any]:
    return {
        "id": followup.id,
        "ref": followups.format_followup_id(followup.id),
        "incident_id": followup.incident_id,
        "incident_ref": incidents.format_incident_id(followup.incident_id),
        "title": followup.title,
        "owner": followup.owner,
        "due_on": followup.due_on,
        "priority": followup.priority,
        "status": followup.status.value,
        "overdue": followups.is_overdue(followup, on),
        "created_by": followup.created_by,
        "created_at": followup.created_at,
        "updated_at": followup.updated_at,
        "closed_by": followup.closed_by,
        "closed_at": followup.closed_at,
        "source_permalink": followup.source_permalink,
        "tracker": followup.tracker,
        "ticket_key": followup.ticket_key,
        "ticket_url": followup.ticket_url,
        "export_requested_at": followup.export_requested_at,
        "url": followup_url(followup),
    }


def due_from(body: dict[str, Any], on: date) -> date | None:
    """`due_on` as sent, or `due` as people say it ("in 2w"); blank or null: none."""
    if "due" in body:
        said = (body["due"] or "").strip()
        return followups.parse_due(said, on) if said else None
    return body.get("due_on")


def _api_url(followup: FollowUp) -> str:
    return link("api.get_followup", followup_id=followup.id)


@bp.post("/incidents/<incident_id>/followups")
@bp.auth_required(api_auth)
@bp.input(schemas.FollowUpCreate, location="json", arg_name="body")
@bp.output(schemas.FollowUp, status_code=201, description="Added; its owner is told by DM")
@bp.doc(tags=[TAG], responses=JSON_BODY_ERRORS)
def add_followup(incident_id: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Add a follow-up to an incident (a closed one too)

    With FOLLOWUP_EXPORT=auto and a tracker, a follow-up of a public incident with an owner is
    exported at once.
    """
    web = services()
    on = today()
    draft = followups.FollowUpDraft(
        title=body["title"],
        owner=body.get("owner"),
        due_on=due_from(body, on),
        priority=body.get("priority"),
        source_permalink=body.get("source_permalink"),
    )
    with web.change() as session:
        followup = followups.add_followup(
            session, incident_id, draft, current_actor(), web.settings.followup_rules
        )
        return followup_body(followup, on), {"Location": _api_url(followup)}


@bp.get("/incidents/<incident_id>/followups")
@bp.auth_required(api_auth)
@bp.output(schemas.IncidentFollowUps)
@bp.doc(tags=[TAG])
def incident_followups(incident_id: str) -> dict[str, Any]:
    """An incident's follow-ups: open ones first, then by due date"""
    on = today()
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        found = followups.followups_of(session, incident.id)
        return {"items": [followup_body(f, on) for f in found]}


@bp.get("/followups")
@bp.auth_required(api_auth)
@bp.input(schemas.FollowUpListQuery, location="query", arg_name="args")
@bp.output(schemas.FollowUpList)
@bp.doc(tags=[TAG])
def list_followups(args: dict[str, Any]) -> dict[str, Any]:
    """Follow-ups across incidents: by owner, status, overdue, incident; overdue first"""
    on = today()
    owner = args.get("owner")
    if owner is not None and owner.strip().lower() == "me":
        owner = current_actor().user_id
    incident = args.get("incident")
    size, page = args["limit"], args["page"]
    query = followups.FollowUpQuery(
        owner=owner.strip() if owner else None,
        status=FollowUpStatus(args["status"]) if args.get("status") else None,
        overdue=args["overdue"],
        incident_id=_incident_number(incident) if incident else None,
        today=on,
        limit=size,
        offset=(page - 1) * size,
    )
    with services().read() as session:
        found = followups.list_followups(session, query)
        items = [followup_body(f, on) for f in found.items]
    return {
        "items": items,
        "total": found.total,
        "page": page,
        "limit": size,
        "has_next": query.offset + len(items) < found.total,
    }


def _incident_number(ref: str) -> int:
    try:
        return incidents.parse_incident_id(ref)
    except incidents.InvalidInput as error:
        raise incidents.InvalidInput(str(error), "incident") from None


@bp.get("/followups/<followup_id>")
@bp.auth_required(api_auth)
@bp.output(schemas.FollowUp)
@bp.doc(tags=[TAG])
def get_followup(followup_id: str) -> dict[str, Any]:
    """A follow-up; the id is `12` or `FU-12`"""
    on = today()
    with services().read() as session:
        return followup_body(followups.get_followup(session, followup_id), on)


@bp.patch("/followups/<followup_id>")
@bp.auth_required(api_auth)
@bp.input(schemas.FollowUpPatch, location="json", arg_name="body")
@bp.output(schemas.FollowUp)
@bp.doc(tags=[TAG], responses=CHANGE_ERRORS)
def update_followup(followup_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change a follow-up, or mark it done, won't do, or open again

    Only the fields sent change, in one transaction; `null` clears the owner or the due date.
    A new owner is told by DM. A closed incident's follow-ups may change too.
    """
    actor = current_actor()
    web = services()
    on = today()
    changes = {name: body[name] for name in ("title", "owner", "priority") if name in body}
    if "due" in body or "due_on" in body:
        changes["due_on"] = due_from(body, on)
    with web.change() as session:
        followup = followups.get_followup(session, followup_id)
        if changes:
            followup = followups.change_followup(
                session, followup.id, actor, web.settings.followup_rules, **changes
            )
        status = body.get("status")
        if status is not None and FollowUpStatus(status) != followup.status:
            followup = followups.set_followup_status(session, followup.id, status, actor)
        return followup_body(followup, on)


@bp.post("/followups/<followup_id>/export")
@bp.auth_required(api_auth)
@bp.output(schemas.FollowUp, status_code=202, description="Queued: the ticket is made once")
@bp.doc(
    tags=[TAG],
    responses={
        403: "Not allowed to this asker",
        409: "Exported already, or an export is queued",
        422: "No FOLLOWUP_TRACKER is configured",
    },
)
def export_followup(followup_id: str) -> dict[str, Any]:
    """Export a follow-up to the tracker (FOLLOWUP_TRACKER) as a ticket

    The outbox makes the ticket, exactly once; `ticket_url` is set when it is made.
    """
    web = services()
    on = today()
    with web.change() as session:
        followup = followups.request_export(
            session, followup_id, current_actor(), web.settings.followup_rules
        )
        return followup_body(followup, on)

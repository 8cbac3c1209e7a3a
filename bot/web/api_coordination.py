"""/api/v1/incidents/{id}/roles and /updates: who leads and helps run an incident, and its
structured updates with the promise of the next one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot import incidents
from bot.incidents import progress, roles
from bot.web import schemas
from bot.web.api_common import CHANGE_ERRORS, bp, incident_body, update_body
from bot.web.auth import api_auth, current_actor, services
from db.models import EventKind, Status

TAG = "Roles and updates"
# The domain's names for what was sent, where the API calls it otherwise.
_API_FIELDS = {"next_update": "next_update_in"}


def _in_api_words(error: incidents.InvalidInput) -> incidents.InvalidInput:
    field = _API_FIELDS.get(error.field or "", error.field)
    return incidents.InvalidInput(str(error), field)


@bp.put("/incidents/<incident_id>/roles/<role>")
@bp.auth_required(api_auth)
@bp.input(schemas.RoleAssignment, location="json", arg_name="body")
@bp.output(schemas.IncidentDetail)
@bp.doc(tags=[TAG], responses=CHANGE_ERRORS)
def assign_role(incident_id: str, role: str, body: dict[str, Any]) -> dict[str, Any]:
    """Give a role to someone, or to nobody

    `role` is `lead` (the incident's owner) or a key of INCIDENT_ROLES (`comms`, `scribe`, ...;
    `roles` of the incident lists them). The person is invited into the incident's channel and
    sent the role's duties. Handing the lead from one person to another may carry `handoff`, a
    one-line summary for the new lead.
    """
    actor = current_actor()
    web = services()
    with web.change() as session:
        incident = roles.assign_role(
            session,
            incident_id,
            role,
            body["user"],
            actor,
            rules=web.settings.role_rules,
            handoff=body.get("handoff"),
        )
        return incident_body(session, incident, actor)


@bp.post("/incidents/<incident_id>/updates")
@bp.auth_required(api_auth)
@bp.input(schemas.UpdateCreate, location="json", arg_name="body")
@bp.output(schemas.Update, status_code=201, description="Posted in the thread and the channel")
@bp.doc(tags=[TAG], responses=CHANGE_ERRORS)
def post_update(incident_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Post a structured update, maybe moving the status

    What is known, the impact for customers, and when the next update will come: when it is
    late, the lead and the comms role are nudged. A `status` moves the incident as a status
    change would (its rules hold: resolving needs a `resolution`, closing what CLOSE_REQUIRES
    asks unless an admin gives an `override` reason); the update is then one event.
    Subscribers are told by DM.
    """
    actor = current_actor()
    web = services()
    seconds = body.get("next_update_in")
    expected = body.get("expected_status")
    draft = progress.UpdateDraft(
        summary=body["summary"],
        impact=body.get("impact"),
        status=body.get("status"),
        next_update_in=timedelta(seconds=seconds) if seconds is not None else None,
        resolution=body.get("resolution"),
        cause=body.get("cause"),
    )
    try:
        with web.change() as session:
            event = progress.post_update(
                session,
                incident_id,
                draft,
                actor,
                intervals=web.settings.update_intervals,
                expected_status=_expected(expected) if expected else None,
                followup_rules=web.settings.followup_rules,
                override=body.get("override"),
            )
            return update_body(event)
    except incidents.InvalidInput as error:
        raise _in_api_words(error) from None


def _expected(value: str) -> Status:
    try:
        return incidents.parse_status(value)
    except incidents.InvalidInput as error:
        raise incidents.InvalidInput(str(error), "expected_status") from None


@bp.get("/incidents/<incident_id>/updates")
@bp.auth_required(api_auth)
@bp.output(schemas.UpdateList)
@bp.doc(tags=[TAG])
def list_updates(incident_id: str) -> dict[str, Any]:
    """An incident's structured updates, oldest first"""
    with services().read() as session:
        incident = incidents.get_incident(session, incident_id)
        events = incidents.timeline(session, incident.id)
        return {"items": [update_body(e) for e in events if e.kind == EventKind.STATUS_UPDATE]}

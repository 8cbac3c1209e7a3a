"""What the REST API's route modules share: the /api/v1 blueprint, its answers to requests it
can't read, and how incidents, notes and events are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apiflask import APIBlueprint, abort
from apiflask.schema_adapters.marshmallow import parser
from flask import Request, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from bot import incidents
from bot.incidents import progress, review, roles
from bot.web.auth import services
from bot.web.links import link
from db.models import Incident, IncidentEvent

bp = APIBlueprint("api", __name__, url_prefix="/api/v1", tag="Incidents")

# Path converters for the ids of notes and screenshots: PostgreSQL bigints.
NOTE_ID = "<int(max=9223372036854775807):note_id>"
SCREENSHOT_ID = "<int(max=9223372036854775807):screenshot_id>"

# Error responses each kind of route documents (401, and 404 for a path with an id, are added
# by APIFlask; 422 too for a route with input).
JSON_BODY_ERRORS = {400: "The body is not valid JSON"}
CHANGE_ERRORS = {
    **JSON_BODY_ERRORS,
    403: "Not allowed to this asker (e.g. a closed incident, for a non-admin)",
    409: "The incident's state forbids it",
}


@bp.errorhandler(BadRequest)
def _bad_request(error: BadRequest) -> tuple[dict[str, Any], int]:
    # webargs says only "Invalid JSON body."; the parser's own words say where.
    cause = getattr(error, "exc", None)
    if cause is not None:
        return {"message": f"The body is not valid JSON: {cause}.", "detail": {}}, 400
    return {"message": error.description or "Bad request.", "detail": {}}, 400


# APIFlask's parser is one for the process: this replaces its loader of JSON bodies.
@parser.location_loader("json")
def _json_body(req: Request, schema: Any) -> Any:
    """The JSON body as webargs reads it, less what its parser lets through to a crash: nesting
    deeper than Python's stack (RecursionError), a number past Python's 4,300 digits, and a lone
    surrogate escape ("\\ud800"), which JSON allows but is no character, so no UTF-8 and no
    PostgreSQL text can hold it."""
    try:
        body = parser.load_json(req, schema)
    except RecursionError:
        abort(400, "The body is not valid JSON here: it is nested too deeply.")
    except ValueError:  # not a JSONDecodeError, which load_json answers itself
        abort(400, "The body is not valid JSON here: a number in it has too many digits.")
    waiting = [body]
    while waiting:  # not recursive: the body may be nested as deep as the parser allowed
        value = waiting.pop()
        if isinstance(value, dict):
            waiting.extend(value)
            waiting.extend(value.values())
        elif isinstance(value, list):
            waiting.extend(value)
        elif isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                abort(400, "The body holds a lone surrogate escape (such as \\ud800): not text.")
    return body


def size(count: int) -> str:
    """A byte count as people set it: 16 MiB, or 200,000 bytes."""
    return f"{count // 2**20} MiB" if count and count % 2**20 == 0 else f"{count:,} bytes"


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> tuple[dict[str, Any], int]:
    limit = request.max_content_length or 0
    announced, form_limit = request.content_length, request.max_form_memory_size
    if announced is not None and announced <= limit and form_limit is not None:
        # The body fits; one of its form fields (not a file) did not.
        message = f"A form field other than a file is larger than {size(form_limit)}."
        limit = form_limit
    else:
        message = f"The body is larger than this endpoint takes ({size(limit)})."
    return {"message": message, "detail": {"limit_bytes": limit}}, 413


def incident_query(args: dict[str, Any]) -> incidents.IncidentQuery:
    """The list's query string as the domain's query; bad values are the domain's 422s."""
    values = args.get("status", [])
    active = any(v.lower() == "active" for v in values)
    sort = args["sort"]
    return incidents.IncidentQuery(
        statuses=[incidents.parse_status(v) for v in values if v.lower() != "active"],
        active=active,
        severities=[incidents.parse_severity(v) for v in args.get("severity", [])],
        services=args.get("service", []),
        categories=args.get("category", []),
        owners=args.get("owner", []),
        text=args.get("q"),
        sort=sort.lstrip("-"),
        descending=sort.startswith("-"),
        page=args["page"],
        page_size=args["limit"],
    )


def page_url(incident_id: int) -> str:
    return link("pages.incident_page", incident_id=incident_id)


def api_url(incident_id: int) -> str:
    return link("api.get_incident", incident_id=incident_id)


def summary(row: incidents.IncidentRow) -> dict[str, Any]:
    return {**row._asdict(), "ref": incidents.format_incident_id(row.id), "url": page_url(row.id)}


def incident_body(session: Session, incident: Incident, actor: incidents.Actor) -> dict[str, Any]:
    """Everything known about the incident, who holds its roles, its latest structured update
    and when the next is due, and where `actor` may move it next."""
    allowed = incidents.allowed_next_statuses(incident.status, is_admin=actor.is_admin)
    held = roles.holders(session, incident, services().settings.role_rules)
    latest = progress.latest_update(session, incident.id)
    return {
        "id": incident.id,
        "ref": incidents.format_incident_id(incident.id),
        "title": incident.title,
        "description": incident.description,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "service": incident.service,
        "category": incident.category,
        "reporter": incident.reporter,
        "reporter_label": incidents.actor_label(incident.reporter),
        "owner": incident.owner,
        "assignee": incident.assignee,
        "roles": {role.key: holder for role, holder in held},
        "next_update_at": incident.next_update_at,
        "update_overdue": progress.is_overdue(incident.next_update_at, datetime.now(UTC)),
        "latest_update": None
        if latest is None
        else {
            "id": latest.id,
            "summary": latest.text,
            "impact": latest.details.get("impact"),
            "status": latest.to_value if latest.field == "status" else None,
            "at": latest.occurred_at,
            "by": latest.actor,
        },
        "cause": incident.cause,
        "resolution": incident.resolution,
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
        "acknowledged_at": incident.acknowledged_at,
        "mitigated_at": incident.mitigated_at,
        "resolved_at": incident.resolved_at,
        "closed_at": incident.closed_at,
        "card_channel_id": incident.slack_channel_id,
        "own_channel_id": incident.own_channel_id,
        "intake_fingerprint": incident.intake_fingerprint,
        "allowed_next_statuses": [s.value for s in allowed],
        "url": page_url(incident.id),
        **{name: getattr(incident, name) for name in review.REVIEW_FIELDS},
    }


def note_body(note: IncidentEvent) -> dict[str, Any]:
    return {
        "id": note.id,
        "incident_id": note.incident_id,
        "text": note.text,
        "actor": note.actor,
        "actor_label": incidents.actor_label(note.actor),
        "occurred_at": note.occurred_at,
        "recorded_at": note.recorded_at,
        "source_url": note.details.get("source_url"),
    }


def _moment(value: Any) -> datetime | None:
    """A moment the domain kept in an event's details (ISO text in JSON)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def update_body(event: IncidentEvent) -> dict[str, Any]:
    """A structured update (a STATUS_UPDATE event) as the API shows it."""
    details = event.details or {}
    moved = event.field == "status"
    seconds = details.get("next_update_in")
    return {
        "id": event.id,
        "incident_id": event.incident_id,
        "summary": event.text,
        "impact": details.get("impact"),
        "status_from": event.from_value if moved else None,
        "status_to": event.to_value if moved else None,
        "next_update_in": int(seconds) if isinstance(seconds, int | float) else None,
        "next_update_at": _moment(details.get("next_update_at")),
        "cause": details.get("cause"),
        "resolution": details.get("resolution"),
        "actor": event.actor,
        "actor_label": incidents.actor_label(event.actor),
        "occurred_at": event.occurred_at,
    }


def event_body(event: IncidentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "kind": event.kind.value,
        "actor": event.actor,
        "actor_label": incidents.actor_label(event.actor),
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "field": event.field,
        "from_value": event.from_value,
        "to_value": event.to_value,
        "text": event.text,
        "details": event.details,
        "deleted_at": event.deleted_at,
        "deleted_by": event.deleted_by,
    }

"""What an incident's page shows of the people running it and of its structured updates: each
role and who holds it, the workspace's people to pick from by name, the subscribers, the latest
update and when the next is due, and the update form's choices. No routes here; the rules are
the domain's, names are Slack's (the directory)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, progress, roles
from bot.web.auth import services
from bot.web.people import People
from db.models import ACTIVE_STATUSES, Incident, IncidentEvent, Status

STATUS_WORDS = {
    Status.OPEN: "Reopen",
    Status.INVESTIGATING: "Investigating",
    Status.MITIGATED: "Mitigated",
    Status.RESOLVED: "Resolved",
    Status.CLOSED: "Closed",
}


def name_of(user_id: str | None) -> str:
    """A person as the pages name them: Slack's name when the directory knows it, else the id
    (or a machine's label)."""
    if not user_id:
        return "nobody"
    return incidents.actor_label(user_id) or services().directory.name(user_id) or user_id


@dataclass(frozen=True)
class RoleRow:
    role: roles.Role
    holder: str | None
    holder_name: str


@dataclass(frozen=True)
class LatestUpdate:
    summary: str
    impact: str | None
    moved: str | None
    by: str
    at: datetime


def _latest(event: IncidentEvent | None) -> LatestUpdate | None:
    if event is None:
        return None
    moved = f"{event.from_value} → {event.to_value}" if event.field == "status" else None
    return LatestUpdate(
        summary=event.text or "",
        impact=event.details.get("impact") or None,
        moved=moved,
        by=name_of(event.actor),
        at=event.occurred_at,
    )


def is_person(actor: Actor) -> bool:
    """Whether `actor` is someone with a Slack user id (who can take a role, be DMed)."""
    return bool(incidents.USER_ID.match(actor.user_id))


def people_view(session: Session, incident: Incident, viewer: Actor) -> dict[str, Any]:
    """The template's values for the People, Latest update and Post an update sections."""
    web = services()
    directory: People | None = web.directory.people()
    held = roles.holders(session, incident, web.settings.role_rules)
    following = incidents.subscribers(session, incident.id)
    person = is_person(viewer)
    now = datetime.now(UTC)
    latest = progress.latest_update(session, incident.id)
    promised = latest.details.get("next_update_in") if latest is not None else None
    intervals = web.settings.update_intervals
    default_interval = next(
        (int(i.total_seconds()) for i in intervals if i.total_seconds() == promised),
        int(intervals[0].total_seconds()) if intervals else None,
    )
    moves = incidents.allowed_next_statuses(incident.status, is_admin=viewer.is_admin)
    return {
        "role_rows": [RoleRow(role, holder, name_of(holder)) for role, holder in held],
        "lead_missing": incident.owner is None,
        "directory": directory.everyone if directory is not None else None,
        "directory_configured": web.directory.configured,
        "subscribers": [(user_id, name_of(user_id)) for user_id in following],
        "viewer_is_person": person,
        "viewer_subscribed": person and viewer.user_id in following,
        "latest_update": _latest(latest),
        "next_update_at": incident.next_update_at,
        "update_overdue": progress.is_overdue(incident.next_update_at, now),
        "is_active": incident.status in ACTIVE_STATUSES,
        "update_moves": [(s.value, STATUS_WORDS[s]) for s in moves],
        "update_intervals": [(int(i.total_seconds()), progress.span(i)) for i in intervals],
        "default_interval": default_interval,
        "handoff_max": roles.HANDOFF_MAX,
        "summary_max": progress.SUMMARY_MAX,
        "impact_max": progress.IMPACT_MAX,
        "name_of": name_of,
    }

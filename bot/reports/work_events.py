"""How the post-mortem's timeline words the work after an incident: follow-ups added, changed,
done or dropped, exported to a tracker; and the review's fields edited."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.incidents import followups
from db.models import EventKind, FollowUpStatus, IncidentEvent, ReviewStatus

from .markdown import at, inline, link
from .review import REVIEW_STATUS_LABELS, Person

# What an event did, and the text to quote under it (None: nothing).
Said = tuple[str, str | None]

REVIEW_FIELD_NAMES = {
    "impact_started_at": "impact start",
    "impact_ended_at": "impact end",
    "customer_impact": "customer impact",
    "contributing_factors": "contributing factors",
    "went_well": "what went well",
    "went_badly": "what went badly",
    "review_status": "review status",
    "reviewer": "reviewer",
}
FOLLOWUP_FIELD_NAMES = {"title": "title", "owner": "owner", "due_on": "due date"}


def _moment(value: str) -> str:
    try:
        return f"{at(datetime.fromisoformat(value))} UTC"
    except ValueError:
        return inline(value)


def review_change(event: IncidentEvent, person: Person) -> Said | None:
    """A review field's FIELD_CHANGED; None for the incident's other fields."""
    field = event.field or ""
    if field not in REVIEW_FIELD_NAMES:
        return None
    label, value = REVIEW_FIELD_NAMES[field], event.to_value
    if value is None:
        return f"cleared the {label}", None
    if field in ("impact_started_at", "impact_ended_at"):
        return f"set the {label} to {_moment(value)}", None
    if field == "review_status":
        try:
            shown = REVIEW_STATUS_LABELS[ReviewStatus(value)]
        except ValueError:
            shown = inline(value)
        return f"moved the review to {shown}", None
    if field == "reviewer":
        return f"made {person(value)} the reviewer", None
    return f"changed the {label} to:", value


def followup_event(event: IncidentEvent, person: Person) -> Said | None:
    """A follow-up's event; None for other kinds."""
    details = event.details or {}
    number = details.get("followup_id")
    ref = followups.format_followup_id(number) if isinstance(number, int) else "a follow-up"
    title = details.get("title")
    named = f"{ref} ({inline(title)})" if isinstance(title, str) and title else ref
    match event.kind:
        case EventKind.FOLLOWUP_ADDED:
            parts = [f"added the follow-up {ref}"]
            if details.get("owner"):
                parts.append(f"for {person(str(details['owner']))}")
            if details.get("due_on"):
                parts.append(f"due {inline(str(details['due_on']))}")
            return " ".join(parts) + ":", event.text
        case EventKind.FOLLOWUP_CHANGED:
            return _followup_change(event, named, person), None
        case EventKind.FOLLOWUP_EXPORTED:
            key = inline(str(details.get("key") or "a ticket"))
            tracker = inline(str(details.get("tracker") or "the tracker"))
            return f"exported {named} to {tracker} as {link(key, event.to_value)}", None
    return None


def _followup_change(event: IncidentEvent, named: str, person: Callable[[str | None], str]) -> str:
    field, value = event.field or "", event.to_value
    if field == "status":
        if value == FollowUpStatus.OPEN.value:
            return f"reopened {named}"
        try:
            label = followups.STATUS_LABELS[FollowUpStatus(value or "")]
        except ValueError:
            label = inline(value or "")
        return f"marked {named} {label}"
    if field == "owner":
        return f"gave {named} to {person(value)}" if value else f"left {named} without an owner"
    if field == "due_on":
        return f"made {named} due {inline(value)}" if value else f"cleared {named}'s due date"
    label = FOLLOWUP_FIELD_NAMES.get(field, inline(field))
    return f"changed {named}'s {label} to {inline(value or 'nothing')}"

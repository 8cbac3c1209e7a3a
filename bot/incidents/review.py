"""The review of an incident (its post-mortem's fields): the impact window, what customers saw,
contributing factors, what went well and badly, and where the review stands, with a reviewer.

Editable while the incident is closed: closed freezes the incident, not the work after it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from db.models import EventKind, Incident, IncidentEvent, ReviewStatus

from .recording import audit, lock_incident, notify, record_event
from .validation import CLOCK_SKEW, _clean, _clean_user, _now
from .vocabulary import Actor, InvalidInput, format_incident_id

log = logging.getLogger("bot.incidents")

REVIEW_TEXT_MAX = 4000
# The fields, in the order forms show them.
REVIEW_FIELDS = (
    "impact_started_at",
    "impact_ended_at",
    "customer_impact",
    "contributing_factors",
    "went_well",
    "went_badly",
    "review_status",
    "reviewer",
)


def edit_review(
    session: Session,
    incident_id: int | str,
    actor: Actor,
    values: dict[str, object],
    *,
    now: datetime | None = None,
) -> tuple[Incident, list[IncidentEvent]]:
    """Set the review fields given in `values` (keys of REVIEW_FIELDS; times as aware
    datetimes, review_status as a ReviewStatus or its value, reviewer a user id, texts cleaned
    here; None clears). A FIELD_CHANGED event for each that changed; the card and summary
    edited, and the thread told of a review status change. The impact's end may not be before
    its start, nor either in the future (InvalidInput naming the field)."""
    now = _now(now)
    unknown = set(values) - set(REVIEW_FIELDS)
    if unknown:
        raise InvalidInput(f"These aren't review fields: {', '.join(sorted(unknown))}.")
    cleaned = {name: _CLEANERS[name](value, now) for name, value in values.items()}
    incident = lock_incident(session, incident_id)
    start = cleaned.get("impact_started_at", incident.impact_started_at) or incident.created_at
    end = cleaned.get("impact_ended_at", incident.impact_ended_at)
    if end is not None and end < start:
        raise InvalidInput(
            f"The impact can't end ({end:%Y-%m-%d %H:%M} UTC) before it started "
            f"({start:%Y-%m-%d %H:%M} UTC).",
            "impact_ended_at" if "impact_ended_at" in cleaned else "impact_started_at",
        )
    events = []
    for name, value in cleaned.items():
        old = getattr(incident, name)
        if old == value:
            continue
        setattr(incident, name, value)
        events.append(
            record_event(
                session,
                incident,
                EventKind.FIELD_CHANGED,
                actor,
                now,
                field=name,
                from_value=_shown(old),
                to_value=_shown(value),
            )
        )
    if not events:
        return incident, events
    incident.updated_at = now
    # The review's texts change the card and summary; where the review stands is told in the
    # thread too.
    told = any(e.field in ("review_status", "reviewer") for e in events)
    notify(session, incident, events, now=now, thread=told, channel=told)
    audit(
        session,
        log,
        "%s review edited (%s) by %s",
        format_incident_id(incident.id),
        ", ".join(e.field or "" for e in events),
        actor.user_id,
    )
    return incident, events


def _shown(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, ReviewStatus) else str(value)


_LABELS = {
    "impact_started_at": "Impact start",
    "impact_ended_at": "Impact end",
    "customer_impact": "Customer impact",
    "contributing_factors": "Contributing factors",
    "went_well": "What went well",
    "went_badly": "What went badly",
}


def _clean_time(name: str):
    def clean(value: object, now: datetime) -> datetime | None:
        if value is None or value == "":
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise InvalidInput(f"{_LABELS[name]} must be a date and time.", name)
        if value > now + CLOCK_SKEW:
            raise InvalidInput(f"{_LABELS[name]} can't be in the future.", name)
        return value

    return clean


def _clean_text(name: str):
    def clean(value: object, now: datetime) -> str | None:
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{_LABELS[name]} must be text.", name)
        return _clean(value, name, REVIEW_TEXT_MAX, label=_LABELS[name])

    return clean


def parse_review_status(value: object) -> ReviewStatus:
    raw = value.value if isinstance(value, ReviewStatus) else str(value or "").strip().lower()
    try:
        return ReviewStatus(raw.replace(" ", "_").replace("-", "_"))
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not a review status. Use draft, in_review or done.", "review_status"
        ) from None


def _clean_reviewer(value: object, now: datetime) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidInput("Reviewer must be a person (a Slack user id).", "reviewer")
    return _clean_user(value, "reviewer")


_CLEANERS = {
    "impact_started_at": _clean_time("impact_started_at"),
    "impact_ended_at": _clean_time("impact_ended_at"),
    "customer_impact": _clean_text("customer_impact"),
    "contributing_factors": _clean_text("contributing_factors"),
    "went_well": _clean_text("went_well"),
    "went_badly": _clean_text("went_badly"),
    "review_status": lambda value, now: parse_review_status(value),
    "reviewer": _clean_reviewer,
}


def impact_window(incident: Incident) -> tuple[datetime, datetime | None]:
    """The impact's start and end: the review's, else declared and resolved."""
    return (
        incident.impact_started_at or incident.created_at,
        incident.impact_ended_at or incident.resolved_at,
    )

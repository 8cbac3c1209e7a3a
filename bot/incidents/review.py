"""The review of an incident (its post-mortem's fields): the impact window, what customers saw,
contributing factors, what went well and badly, and where the review stands, with a reviewer.

Editable while the incident is closed: closed freezes the incident, not the work after it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db.models import Incident, IncidentEvent

from .vocabulary import Actor

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
    raise NotImplementedError


def impact_window(incident: Incident) -> tuple[datetime, datetime | None]:
    """The impact's start and end: the review's, else declared and resolved."""
    return (
        incident.impact_started_at or incident.created_at,
        incident.impact_ended_at or incident.resolved_at,
    )

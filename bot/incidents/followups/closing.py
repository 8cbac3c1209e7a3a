"""The close rule (CLOSE_REQUIRES): an incident closes once its follow-ups are triaged (or its
review is done), unless an admin gives a reason."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from db.models import (
    FollowUp,
    FollowUpStatus,
    Incident,
    ReviewStatus,
    Status,
)

from ..validation import _clean
from ..vocabulary import (
    Actor,
    InvalidInput,
    PermissionDenied,
    format_incident_id,
)
from .rules import (
    CLOSE_FOLLOWUPS_TRIAGED,
    CLOSE_REVIEW_DONE,
    FollowUpRules,
    format_followup_id,
)

log = logging.getLogger(__name__)


def close_refusal(session: Session, incident: Incident, rules: FollowUpRules) -> str | None:
    """Why the incident may not close yet under CLOSE_REQUIRES, as a sentence naming what is
    missing; None when it may."""
    ref = format_incident_id(incident.id)
    if rules.close_requires == CLOSE_REVIEW_DONE and incident.review_status != ReviewStatus.DONE:
        return (
            f"{ref} can't close until its review is done (it is "
            f"{incident.review_status.value.replace('_', ' ')}): finish the post-mortem review "
            "and mark it done first."
        )
    if rules.close_requires != CLOSE_FOLLOWUPS_TRIAGED:
        return None
    untriaged = session.scalars(
        select(FollowUp.id)
        .where(
            FollowUp.incident_id == incident.id,
            FollowUp.status == FollowUpStatus.OPEN,
            or_(FollowUp.owner.is_(None), FollowUp.due_on.is_(None)),
        )
        .order_by(FollowUp.id)
    ).all()
    if not untriaged:
        return None
    shown = ", ".join(format_followup_id(i) for i in untriaged[:5])
    more = f" and {len(untriaged) - 5} more" if len(untriaged) > 5 else ""
    count = f"{len(untriaged)} follow-up{'s' if len(untriaged) > 1 else ''}"
    verb = "have" if len(untriaged) > 1 else "has"
    return (
        f"{ref} can't close yet: {count} {verb} no owner or due date ({shown}{more}). "
        "Give each an owner and a due date, or mark it won't do."
    )


def closable(rules: FollowUpRules) -> Any:
    """The SQL condition of incidents CLOSE_REQUIRES lets close (for the auto-close sweep)."""
    if rules.close_requires == CLOSE_REVIEW_DONE:
        return Incident.review_status == ReviewStatus.DONE
    if rules.close_requires != CLOSE_FOLLOWUPS_TRIAGED:
        return Incident.id.is_not(None)
    untriaged = (
        select(FollowUp.id)
        .where(
            FollowUp.incident_id == Incident.id,
            FollowUp.status == FollowUpStatus.OPEN,
            or_(FollowUp.owner.is_(None), FollowUp.due_on.is_(None)),
        )
        .exists()
    )
    return ~untriaged


OVERRIDE_MAX = 500


def check_close(
    session: Session,
    incident: Incident,
    new: Status,
    actor: Actor,
    rules: FollowUpRules,
    override: str | None,
) -> dict[str, str]:
    """Refuse a move to closed the rules don't allow yet (InvalidInput, field "status"), unless
    an admin gives a reason (`override`, recorded in the event's details as "override"); a
    non-admin's override is PermissionDenied. Returns the details to record."""
    reason = _clean(override, "override", OVERRIDE_MAX, label="Override reason")
    if new != Status.CLOSED:
        return {}
    refusal = close_refusal(session, incident, rules)
    if refusal is None:
        return {}
    if reason is None:
        if actor.is_admin:
            refusal += " (An incident admin may close it anyway, giving a reason.)"
        raise InvalidInput(refusal, "status")
    if not actor.is_admin:
        raise PermissionDenied(
            f"Only an incident admin can close {format_incident_id(incident.id)} before it is "
            "ready."
        )
    return {"override": reason}

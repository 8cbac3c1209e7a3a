"""Reading follow-ups: one, an incident's, a filtered list, and the tickets to poll."""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from db.models import (
    FollowUp,
    FollowUpStatus,
)

from ..vocabulary import (
    NotFound,
)
from .rules import (
    FollowUpPage,
    FollowUpQuery,
    format_followup_id,
    parse_followup_id,
)

log = logging.getLogger(__name__)


def get_followup(session: Session, followup_id: int | str) -> FollowUp:
    number = parse_followup_id(followup_id)
    followup = session.get(FollowUp, number)
    if followup is None:
        raise NotFound(f"There is no follow-up {format_followup_id(number)}.")
    return followup


_OPEN_FIRST = case((FollowUp.status == FollowUpStatus.OPEN, 0), else_=1)


def followups_of(session: Session, incident_id: int) -> list[FollowUp]:
    """The incident's follow-ups: open first, then by due date (none last), then by id."""
    return list(
        session.scalars(
            select(FollowUp)
            .where(FollowUp.incident_id == incident_id)
            .order_by(_OPEN_FIRST, FollowUp.due_on.asc().nulls_last(), FollowUp.id)
        )
    )


def list_followups(session: Session, query: FollowUpQuery) -> FollowUpPage:
    """Follow-ups across incidents: open first, then by due date (overdue ones come first that
    way), then by id."""
    today = query.today or date.today()
    conditions = []
    if query.owner is not None:
        conditions.append(FollowUp.owner == query.owner)
    if query.status is not None:
        conditions.append(FollowUp.status == query.status)
    if query.overdue:
        conditions += [FollowUp.status == FollowUpStatus.OPEN, FollowUp.due_on < today]
    if query.incident_id is not None:
        conditions.append(FollowUp.incident_id == query.incident_id)
    total = session.scalar(select(func.count()).select_from(FollowUp).where(*conditions)) or 0
    items = session.scalars(
        select(FollowUp)
        .where(*conditions)
        .order_by(_OPEN_FIRST, FollowUp.due_on.asc().nulls_last(), FollowUp.id)
        .limit(max(1, min(query.limit, 200)))
        .offset(max(0, query.offset))
    ).all()
    return FollowUpPage(items=list(items), total=total)


def tickets_to_poll(session: Session, tracker: str, before: datetime, limit: int) -> list[FollowUp]:
    """Open follow-ups with a ticket in `tracker` last checked before `before` (or never),
    least recently checked first."""
    return list(
        session.scalars(
            select(FollowUp)
            .where(
                FollowUp.tracker == tracker,
                FollowUp.ticket_key.is_not(None),
                FollowUp.status == FollowUpStatus.OPEN,
                or_(FollowUp.ticket_checked_at.is_(None), FollowUp.ticket_checked_at < before),
            )
            .order_by(FollowUp.ticket_checked_at.asc().nulls_first(), FollowUp.id)
            .limit(limit)
        )
    )


def mark_polled(session: Session, followup_ids: list[int], now: datetime) -> None:
    """Record that these tickets' states were read (so the poll moves on to others)."""
    for followup in session.scalars(select(FollowUp).where(FollowUp.id.in_(followup_ids))):
        followup.ticket_checked_at = now

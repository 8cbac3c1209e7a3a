"""How the work after incidents goes: follow-ups opened and completed per ISO week (UTC), and
how many are overdue now. The stats page and the API show these beside MTTR, which keeps
counting from the incidents' milestones (bot.incidents.queries.stats)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from db.models import FollowUp, FollowUpStatus

from .vocabulary import InvalidInput


@dataclass(frozen=True)
class FollowUpWeek:
    week: date  # the Monday that starts it (UTC)
    opened: int = 0
    completed: int = 0  # marked done that week (won't do is not done)
    dropped: int = 0  # marked won't do that week


@dataclass
class FollowUpStats:
    since: datetime
    until: datetime
    # Weeks with something opened, done or dropped, oldest first; the others are absent.
    weeks: list[FollowUpWeek] = field(default_factory=list)
    opened: int = 0
    completed: int = 0
    dropped: int = 0
    # Now, whenever they were opened: still open, and open past their due date (before `today`).
    open_now: int = 0
    overdue_now: int = 0


def _week(column: object) -> object:
    return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)


def followup_stats(
    session: Session, since: datetime, until: datetime, today: date
) -> FollowUpStats:
    """Follow-ups opened in [since, until) and closed in it (done, won't do; one closed then
    reopened counts no more), per week and in all; and those open and overdue on `today` (the
    day in TIMEZONE, as the digest and the lists count it)."""
    if until <= since:
        raise InvalidInput("The end of the window must be after its start.")
    counts: dict[date, dict[str, int]] = {}
    opened = _week(FollowUp.created_at)
    for monday, count in session.execute(
        select(opened, func.count())
        .where(FollowUp.created_at >= since, FollowUp.created_at < until)
        .group_by(opened)
    ):
        counts.setdefault(monday, {})["opened"] = count
    closed = _week(FollowUp.closed_at)
    for monday, status, count in session.execute(
        select(closed, FollowUp.status, func.count())
        .where(
            FollowUp.status.in_((FollowUpStatus.DONE, FollowUpStatus.WONT_DO)),
            FollowUp.closed_at >= since,
            FollowUp.closed_at < until,
        )
        .group_by(closed, FollowUp.status)
    ):
        key = "completed" if status == FollowUpStatus.DONE else "dropped"
        counts.setdefault(monday, {})[key] = count
    weeks = [FollowUpWeek(monday, **counts[monday]) for monday in sorted(counts)]
    open_now, overdue_now = session.execute(
        select(
            func.count(),
            func.count().filter(FollowUp.due_on < today),
        ).where(FollowUp.status == FollowUpStatus.OPEN)
    ).one()
    return FollowUpStats(
        since=since,
        until=until,
        weeks=weeks,
        opened=sum(w.opened for w in weeks),
        completed=sum(w.completed for w in weeks),
        dropped=sum(w.dropped for w in weeks),
        open_now=open_now,
        overdue_now=overdue_now,
    )

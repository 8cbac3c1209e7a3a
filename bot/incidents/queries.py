"""Reading incidents: one by id or by card, timelines, filtered and sorted pages, stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from db.models import (
    USER_REF_LENGTH,
    Incident,
    IncidentEvent,
    Severity,
    Status,
)

from .validation import (
    _clean,
)
from .vocabulary import (
    PAGE_SIZE_MAX,
    SERVICE_MAX,
    InvalidInput,
    NotFound,
    format_incident_id,
    parse_incident_id,
)
from .workflow import (
    ACTIVE_STATUSES,
    WORKFLOW_ORDER,
)

# --- Queries -----------------------------------------------------------------------------------


def get_incident(session: Session, incident_id: object) -> Incident:
    number = parse_incident_id(incident_id)
    incident = session.get(Incident, number)
    if incident is None:
        raise NotFound(f"There is no incident {format_incident_id(number)}.")
    return incident


def find_by_card(session: Session, channel_id: str, card_ts: str) -> Incident | None:
    """The incident whose card is the message `card_ts` in `channel_id`."""
    return session.scalar(
        select(Incident).where(Incident.slack_channel_id == channel_id, Incident.card_ts == card_ts)
    )


def timeline(
    session: Session, incident_id: int, *, limit: int | None = None
) -> list[IncidentEvent]:
    """Events oldest first; with `limit`, the most recent `limit` of them."""
    query = (
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.occurred_at.desc(), IncidentEvent.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return list(reversed(session.scalars(query).all()))


_STATUS_RANK = case({s.value: i for i, s in enumerate(WORKFLOW_ORDER)}, value=Incident.status)
# Higher is more severe, so "severity, descending" (the default direction) puts SEV1 first.
_SEVERITY_RANK = case({s.value: -i for i, s in enumerate(Severity)}, value=Incident.severity)
SORT_KEYS: dict[str, Any] = {
    "created": Incident.created_at,
    "updated": Incident.updated_at,
    "severity": _SEVERITY_RANK,
    "status": _STATUS_RANK,
    "title": func.lower(Incident.title),
}


@dataclass
class IncidentQuery:
    statuses: Sequence[Status] = ()
    severities: Sequence[Severity] = ()
    active: bool = False
    category: str | None = None
    service: str | None = None
    owner: str | None = None
    reporter: str | None = None
    # Owner or assignee: "my incidents".
    involving: str | None = None
    text: str | None = None
    sort: str = "created"
    descending: bool = True
    page: int = 1
    page_size: int = 20


# Counting every match of a broad search costs more than fetching a page of it; past this many,
# lists say "1,000+" instead of an exact total.
COUNT_CAP = 1_000


@dataclass
class Page:
    items: list[Incident]
    total: int
    page: int
    page_size: int
    has_next: bool
    # False when there are more than COUNT_CAP matches and `total` is that cap.
    total_is_exact: bool = True

    @property
    def pages(self) -> int | None:
        """Number of pages, or None when the total is only known to exceed COUNT_CAP."""
        if not self.total_is_exact:
            return None
        return max(1, -(-self.total // self.page_size))


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: IncidentQuery) -> Select[tuple[Incident]]:
    stmt = select(Incident)
    if query.statuses:
        stmt = stmt.where(Incident.status.in_(list(query.statuses)))
    if query.active:
        stmt = stmt.where(Incident.status.in_(ACTIVE_STATUSES))
    if query.severities:
        stmt = stmt.where(Incident.severity.in_(list(query.severities)))
    if query.category:
        stmt = stmt.where(Incident.category == query.category.strip().lower())
    if query.service:
        stmt = stmt.where(func.lower(Incident.service) == query.service.strip().lower())
    if query.owner:
        stmt = stmt.where(Incident.owner == query.owner)
    if query.reporter:
        stmt = stmt.where(Incident.reporter == query.reporter)
    if query.involving:
        stmt = stmt.where(
            (Incident.owner == query.involving) | (Incident.assignee == query.involving)
        )
    for word in (query.text or "").split():
        stmt = stmt.where(Incident.search_text.ilike(f"%{_escape_like(word)}%", escape="\\"))
    return stmt


SEARCH_MAX = 500
# Far past any real list; keeps OFFSET inside PostgreSQL's bigint.
PAGE_MAX = 10_000_000


def _check_query(query: IncidentQuery) -> None:
    """Filters are typed by people (and forged by some): refuse what can't be searched for."""
    for field_name, value, max_len in (
        ("text", query.text, SEARCH_MAX),
        ("service", query.service, SERVICE_MAX),
        ("category", query.category, 64),
        ("owner", query.owner, USER_REF_LENGTH),
        ("reporter", query.reporter, USER_REF_LENGTH),
        ("involving", query.involving, USER_REF_LENGTH),
    ):
        label = "The search" if field_name == "text" else f"The {field_name} filter"
        _clean(value, field_name, max_len, label=label)
    if query.sort not in SORT_KEYS:
        raise InvalidInput(
            f"Can't sort by {query.sort!r}. Use one of: {', '.join(SORT_KEYS)}.", "sort"
        )
    if not 1 <= query.page_size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"Page size must be between 1 and {PAGE_SIZE_MAX}.", "page_size")
    if not 1 <= query.page <= PAGE_MAX:
        raise InvalidInput(f"Pages are numbered from 1 to {PAGE_MAX:,}.", "page")


def list_incidents(session: Session, query: IncidentQuery) -> Page:
    _check_query(query)
    stmt = _filtered(query)
    # Counted over ids only: the capped subquery need not carry every column of 1,001 rows.
    capped = stmt.with_only_columns(Incident.id).limit(COUNT_CAP + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(capped))
    total = min(counted or 0, COUNT_CAP)
    key = SORT_KEYS[query.sort]
    tie = Incident.id.desc() if query.descending else Incident.id.asc()
    stmt = (
        stmt.order_by(key.desc() if query.descending else key.asc(), tie)
        .limit(query.page_size + 1)  # one extra row says whether there is a next page
        .offset((query.page - 1) * query.page_size)
    )
    items = list(session.scalars(stmt).all())
    return Page(
        items=items[: query.page_size],
        total=total,
        page=query.page,
        page_size=query.page_size,
        has_next=len(items) > query.page_size,
        total_is_exact=(counted or 0) <= COUNT_CAP,
    )


@dataclass
class Timings:
    """Mean time from declaration to each milestone, over the incidents that reached it."""

    count: int = 0
    mtta: timedelta | None = None
    mttm: timedelta | None = None
    mttr: timedelta | None = None


@dataclass
class Stats:
    since: datetime
    until: datetime
    total: int = 0
    by_status: dict[Status, int] = field(default_factory=dict)
    by_severity: dict[Severity, int] = field(default_factory=dict)
    timings: dict[Severity, Timings] = field(default_factory=dict)


def _mean_since_created(column: Any) -> Any:
    return func.avg(column - Incident.created_at)


def stats(session: Session, since: datetime, until: datetime) -> Stats:
    """Counts and MTTA/MTTM/MTTR for incidents declared in [since, until)."""
    if until <= since:
        raise InvalidInput("The end of the window must be after its start.")
    window = (Incident.created_at >= since) & (Incident.created_at < until)
    result = Stats(since=since, until=until)
    for status, count in session.execute(
        select(Incident.status, func.count()).where(window).group_by(Incident.status)
    ):
        result.by_status[status] = count
    result.total = sum(result.by_status.values())
    rows = session.execute(
        select(
            Incident.severity,
            func.count(),
            _mean_since_created(Incident.acknowledged_at),
            _mean_since_created(Incident.mitigated_at),
            _mean_since_created(Incident.resolved_at),
        )
        .where(window)
        .group_by(Incident.severity)
    )
    for severity, count, mtta, mttm, mttr in rows:
        result.by_severity[severity] = count
        result.timings[severity] = Timings(count=count, mtta=mtta, mttm=mttm, mttr=mttr)
    return result

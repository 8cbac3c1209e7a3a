"""Reading incidents: one by id or by card, timelines, filtered and sorted pages, stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from db.models import (
    USER_REF_LENGTH,
    EventKind,
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


def noted_from(session: Session, incident_id: int, source: str) -> bool:
    """Whether a note of the incident was taken from the message `source` already."""
    return bool(
        session.scalar(
            select(IncidentEvent.id).where(
                IncidentEvent.incident_id == incident_id,
                IncidentEvent.kind == EventKind.NOTE,
                IncidentEvent.details["source"].astext == source,
            )
        )
    )


def incident_in_channel(session: Session, channel_id: str) -> int | None:
    """The incident whose own channel `channel_id` is, if any."""
    return session.scalar(select(Incident.id).where(Incident.own_channel_id == channel_id))


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


def _rank(column: str, values: Sequence[str]) -> str:
    whens = " ".join(f"WHEN '{value}' THEN {rank}" for rank, value in enumerate(values))
    return f"CASE {column} {whens} END"


# The list is the hottest read (every `/incident list`, page button, picker keystroke and Home
# tab), so it is hand-written SQL: building the same statement with select() each call cost
# 1.7 ms against the query's own 0.6 ms. These fragments are the only spelling of each order.
SORT_SQL: dict[str, str] = {
    "created": "created_at",
    "updated": "updated_at",
    # Higher is more severe, so "severity, descending" (the default direction) puts SEV1 first.
    "severity": _rank("severity", [s.value for s in reversed(Severity)]),
    "status": _rank("status", [s.value for s in WORKFLOW_ORDER]),
    "title": "lower(title)",
}


@dataclass
class IncidentQuery:
    statuses: Sequence[Status] = ()
    severities: Sequence[Severity] = ()
    active: bool = False
    # Each filter matches any of its values (the API's `?service=api,db`).
    categories: Sequence[str] = ()
    services: Sequence[str] = ()
    owners: Sequence[str] = ()
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


class IncidentRow(NamedTuple):
    """An incident as lists show it: the columns a line of a list needs, nothing loaded lazily.
    A named tuple because a page builds twenty of them per request and a dataclass costs 5x."""

    id: int
    title: str
    severity: Severity
    status: Status
    service: str | None
    owner: str | None
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    own_channel_id: str | None = None


_SEVERITIES = {s.value: s for s in Severity}
_STATUSES = {s.value: s for s in Status}


@dataclass
class Page:
    items: list[IncidentRow]
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


def _where(query: IncidentQuery) -> tuple[str, dict[str, Any]]:
    """The query's filters as one SQL condition and its parameters (psycopg2's `%(name)s`)."""
    clauses = ["TRUE"]
    params: dict[str, Any] = {}
    if query.statuses:
        clauses.append("status = ANY(%(statuses)s)")
        params["statuses"] = [Status(s).value for s in query.statuses]
    if query.active:
        clauses.append("status = ANY(%(active)s)")
        params["active"] = [s.value for s in ACTIVE_STATUSES]
    if query.severities:
        clauses.append("severity = ANY(%(severities)s)")
        params["severities"] = [Severity(s).value for s in query.severities]
    if query.categories:
        clauses.append("category = ANY(%(categories)s)")
        params["categories"] = [c.strip().lower() for c in query.categories]
    if query.services:
        clauses.append("lower(service) = ANY(%(services)s)")
        params["services"] = [s.strip().lower() for s in query.services]
    if query.owners:
        clauses.append("owner = ANY(%(owners)s)")
        params["owners"] = list(query.owners)
    if query.reporter:
        clauses.append("reporter = %(reporter)s")
        params["reporter"] = query.reporter
    if query.involving:
        clauses.append("(owner = %(involving)s OR assignee = %(involving)s)")
        params["involving"] = query.involving
    for n, word in enumerate((query.text or "").split()):
        clauses.append(f"search_text ILIKE %(word{n})s ESCAPE '\\'")
        params[f"word{n}"] = f"%{_escape_like(word)}%"
    return " AND ".join(clauses), params


_ROW_COLUMNS = (
    "id, title, severity, status, service, owner, assignee, created_at, updated_at, own_channel_id"
)


SEARCH_MAX = 500
# Far past any real list; keeps OFFSET inside PostgreSQL's bigint.
PAGE_MAX = 10_000_000


def _check_query(query: IncidentQuery) -> None:
    """Filters are typed by people (and forged by some): refuse what can't be searched for."""
    for field_name, value, max_len in (
        ("text", query.text, SEARCH_MAX),
        *(("service", service, SERVICE_MAX) for service in query.services),
        *(("category", category, 64) for category in query.categories),
        *(("owner", owner, USER_REF_LENGTH) for owner in query.owners),
        ("reporter", query.reporter, USER_REF_LENGTH),
        ("involving", query.involving, USER_REF_LENGTH),
    ):
        label = "The search" if field_name == "text" else f"The {field_name} filter"
        _clean(value, field_name, max_len, label=label)
    if query.sort not in SORT_SQL:
        raise InvalidInput(
            f"Can't sort by {query.sort!r}. Use one of: {', '.join(SORT_SQL)}.", "sort"
        )
    if not 1 <= query.page_size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"Page size must be between 1 and {PAGE_SIZE_MAX}.", "page_size")
    if not 1 <= query.page <= PAGE_MAX:
        raise InvalidInput(f"Pages are numbered from 1 to {PAGE_MAX:,}.", "page")


def list_incidents(session: Session, query: IncidentQuery) -> Page:
    _check_query(query)
    where, params = _where(query)
    direction = "DESC" if query.descending else "ASC"
    # One round trip: the capped count rides along as a scalar subquery PostgreSQL runs once.
    sql = (
        f"SELECT {_ROW_COLUMNS}, (SELECT count(*) FROM (SELECT 1 FROM incidents WHERE {where} "
        f"LIMIT {COUNT_CAP + 1}) AS capped) FROM incidents WHERE {where} "
        f"ORDER BY {SORT_SQL[query.sort]} {direction}, id {direction} "
        "LIMIT %(limit)s OFFSET %(offset)s"
    )
    params["limit"] = query.page_size + 1  # one extra row says whether there is a next page
    params["offset"] = (query.page - 1) * query.page_size
    session.flush()  # the SQL below bypasses autoflush, and must see this session's changes
    rows = session.connection().exec_driver_sql(sql, params).all()
    if rows:
        counted = rows[0][-1]
    elif query.page == 1:
        counted = 0
    else:  # past the last page: the rows that carried the count are not there
        counted = (
            session.connection()
            .exec_driver_sql(
                f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE {where} "
                f"LIMIT {COUNT_CAP + 1}) AS capped",
                params,
            )
            .scalar_one()
        )
    items = [
        IncidentRow(
            r[0], r[1], _SEVERITIES[r[2]], _STATUSES[r[3]], r[4], r[5], r[6], r[7], r[8], r[9]
        )
        for r in rows[: query.page_size]
    ]
    return Page(
        items=items,
        total=min(counted, COUNT_CAP),
        page=query.page,
        page_size=query.page_size,
        has_next=len(rows) > query.page_size,
        total_is_exact=counted <= COUNT_CAP,
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


class WeekRow(NamedTuple):
    """Incidents of one severity declared in one ISO week (UTC), and how fast they resolved."""

    week: date  # the Monday that starts it
    severity: Severity
    declared: int
    resolved: int
    # Mean seconds from declaration to resolution over the `resolved` ones; None when none is.
    mean_time_to_resolve: float | None


def weekly(session: Session, since: datetime, until: datetime) -> list[WeekRow]:
    """Per ISO week (in UTC) and severity, incidents declared in [since, until): how many, and
    the mean time to resolve those resolved. Weeks and severities with none are absent."""
    if until <= since:
        raise InvalidInput("The end of the window must be after its start.")
    week = cast(func.date_trunc("week", func.timezone("UTC", Incident.created_at)), Date)
    rows = session.execute(
        select(
            week,
            Incident.severity,
            func.count(),
            func.count(Incident.resolved_at),
            func.avg(func.extract("epoch", Incident.resolved_at - Incident.created_at)),
        )
        .where(Incident.created_at >= since, Incident.created_at < until)
        .group_by(week, Incident.severity)
        .order_by(week, Incident.severity)
    )
    return [
        WeekRow(monday, severity, declared, resolved, None if mean is None else float(mean))
        for monday, severity, declared, resolved, mean in rows
    ]

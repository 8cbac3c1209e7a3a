"""Reading incidents: one by id or by card, timelines, filtered and sorted pages, stats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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


def _both(key: str) -> tuple[str, str]:
    return f"{key} DESC, id DESC", f"{key}, id"


# The list is the hottest read (every `/incident list`, page button, picker keystroke and Home
# tab), so it is hand-written SQL: building the same statement with select() each call cost
# 1.7 ms against the query's own 0.6 ms. These are the only spelling of each order: a sort's
# ORDER BY when descending (the default) and when ascending, ties broken by id.
ORDER_SQL: dict[str, tuple[str, str]] = {
    "created": _both("created_at"),
    "updated": _both("updated_at"),
    # Severity names sort most severe first ("SEV1" < "SEV2"), so "by severity, descending"
    # (SEV1 first) is the column's ascending order; the index on (severity, id DESC) has both.
    "severity": ("severity, id DESC", "severity DESC, id"),
    "status": _both(_rank("status", [s.value for s in WORKFLOW_ORDER])),
    "title": _both("lower(title)"),
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


# Counting every match of a broad search costs more than fetching a page of it, so a list counts
# at most this many matches past the start of the page it shows, in the same scan that finds the
# page; past that, its total reads "200+" (on page 1).
COUNT_AHEAD = 200


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
    # False when more match than were counted (COUNT_AHEAD past the page's start): `total` is
    # how many were.
    total_is_exact: bool = True

    @property
    def pages(self) -> int | None:
        """Number of pages, or None when the total is only known to be at least `total`."""
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
    words, symbols = _search_terms(query.text or "")
    if words:
        clauses.append("search_vector @@ to_tsquery('pg_catalog.simple', %(words)s)")
        params["words"] = words
    for n, symbol in enumerate(symbols):
        # Nothing to index (an emoji, "%"): matched as written, anywhere in the text.
        clauses.append(
            f"concat_ws(' ', title, description, service) ILIKE %(symbol{n})s ESCAPE '\\'"
        )
        params[f"symbol{n}"] = f"%{_escape_like(symbol)}%"
    return " AND ".join(clauses), params


def _search_terms(text: str) -> tuple[str, list[str]]:
    """A search as a tsquery that every word must match, and the words that have no letters or
    digits. Words match whole words of title, description and service (case-insensitively); a
    word ending in `*` also matches the words it begins. Each word is quoted, so what people type
    is never tsquery syntax."""
    operands, symbols = [], []
    for word in text.split():
        stem = word.rstrip("*")
        if any(ch.isalnum() for ch in stem):
            quoted = stem.replace("\\", "\\\\").replace("'", "''")
            operands.append(f"'{quoted}'" + (":*" if stem != word else ""))
        elif stem:
            symbols.append(stem)
    return " & ".join(operands), symbols


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
    if query.sort not in ORDER_SQL:
        raise InvalidInput(
            f"Can't sort by {query.sort!r}. Use one of: {', '.join(ORDER_SQL)}.", "sort"
        )
    if not 1 <= query.page_size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"Page size must be between 1 and {PAGE_SIZE_MAX}.", "page_size")
    if not 1 <= query.page <= PAGE_MAX:
        raise InvalidInput(f"Pages are numbered from 1 to {PAGE_MAX:,}.", "page")


def _order(query: IncidentQuery) -> str:
    descending, ascending = ORDER_SQL[query.sort]
    return descending if query.descending else ascending


def _items(rows: Sequence[Any], page_size: int) -> list[IncidentRow]:
    return [
        IncidentRow(
            r[0], r[1], _SEVERITIES[r[2]], _STATUSES[r[3]], r[4], r[5], r[6], r[7], r[8], r[9]
        )
        for r in rows[:page_size]
    ]


def find_incidents(session: Session, query: IncidentQuery) -> list[IncidentRow]:
    """The query's page without its total, for what shows none (the picker, the Home tab)."""
    _check_query(query)
    where, params = _where(query)
    params.update(limit=query.page_size, offset=(query.page - 1) * query.page_size)
    session.flush()  # the SQL bypasses autoflush, and must see this session's changes
    rows = session.connection().exec_driver_sql(
        f"SELECT {_ROW_COLUMNS} FROM incidents WHERE {where} ORDER BY {_order(query)} "
        "LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    return _items(rows.all(), query.page_size)


# A search's words can be common overall and absent from one severity (no "payments" incident
# was ever SEV1), and a scan in severity order would then read every SEV1 incident to learn so.
# Sorted by severity, a search reads each severity on its own: in order, but no further than
# this many incidents (or ten per match it still needs); a severity whose matches are rarer than
# that reads them from its own search index (ix_incidents_search_vector_sev*), which costs in
# proportion to those few matches.
SEVERITY_SCAN = 2_000


def _search_by_severity(
    session: Session, query: IncidentQuery, params: dict[str, Any]
) -> list[Any]:
    """A search's first `params["ahead"]` matches, sorted by severity."""
    direction = "DESC" if query.descending else "ASC"
    # Most severe first when descending: severity names sort that way (see ORDER_SQL).
    severities = sorted(query.severities or Severity, reverse=not query.descending)
    # Each branch names its one severity instead, so the planner prices that severity alone.
    where, _ = _where(replace(query, severities=()))
    found: list[Any] = []
    for severity in severities:
        need = params["ahead"] - len(found)
        if need <= 0:
            break
        # A literal, from the enum: the severity's partial index applies only to a constant.
        branch = {**params, "need": need, "scan": max(SEVERITY_SCAN, 10 * need)}
        one = f"severity = '{Severity(severity).value}'"
        run = session.connection().exec_driver_sql
        rows = run(
            f"SELECT {_ROW_COLUMNS} FROM (SELECT {_ROW_COLUMNS}, ({where}) AS hit "
            f"FROM incidents WHERE {one} ORDER BY id {direction} LIMIT %(scan)s) AS scanned "
            f"WHERE hit ORDER BY id {direction} LIMIT %(need)s",
            branch,
        ).all()
        if len(rows) < need:  # rare here: the rest through the search index, not in order
            branch.update(need=need - len(rows), seen=rows[-1][0] if rows else None)
            past = "" if not rows else f"AND id {'<' if query.descending else '>'} %(seen)s"
            rows += run(
                f"SELECT {_ROW_COLUMNS} FROM incidents WHERE {where} AND {one} {past} "
                f"ORDER BY id + 0 {direction} LIMIT %(need)s",
                branch,
            ).all()
        found += rows
    return found


def list_incidents(session: Session, query: IncidentQuery) -> Page:
    """The query's page and its total, counted up to COUNT_AHEAD matches past the page's start.

    One statement and one scan: the matches are read in the list's order as far as the count
    goes, numbered, and the page is cut from them. A separate count would scan the matches a
    second time, in whatever order is cheapest for it alone, and cost more than the page."""
    _check_query(query)
    where, params = _where(query)
    offset = (query.page - 1) * query.page_size
    counted_to = offset + COUNT_AHEAD
    order = _order(query)
    params.update(ahead=counted_to + 1, offset=offset, limit=query.page_size + 1)
    session.flush()
    rows: Sequence[Any]
    if query.sort == "severity" and "words" in params:
        ahead = _search_by_severity(session, query, params)
        rows = [(*row, len(ahead)) for row in ahead[offset : offset + query.page_size + 1]]
    else:
        rows = (
            session.connection()
            .exec_driver_sql(
                f"WITH ahead AS (SELECT {_ROW_COLUMNS}, row_number() OVER (ORDER BY {order}) "
                f"AS n FROM incidents WHERE {where} ORDER BY {order} LIMIT %(ahead)s) "
                f"SELECT {_ROW_COLUMNS}, (SELECT count(*) FROM ahead) FROM ahead "
                "WHERE n > %(offset)s ORDER BY n LIMIT %(limit)s",
                params,
            )
            .all()
        )
    if rows:
        counted = rows[0][-1]
    elif query.page == 1:
        counted = 0
    else:  # past the last page: the rows that carried the count are not there
        counted = (
            session.connection()
            .exec_driver_sql(
                f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE {where} "
                "LIMIT %(ahead)s) AS matches",
                params,
            )
            .scalar_one()
        )
    return Page(
        items=_items(rows, query.page_size),
        total=min(counted, counted_to),
        page=query.page,
        page_size=query.page_size,
        has_next=len(rows) > query.page_size,
        total_is_exact=counted <= counted_to,
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


def active_by_severity(session: Session) -> dict[Severity, int]:
    """Active incidents per severity (0 where none): one grouped read of the active incidents'
    own small index, cheap enough for every metrics scrape."""
    counts = dict(
        session.execute(
            select(Incident.severity, func.count())
            .where(Incident.status.in_(ACTIVE_STATUSES))
            .group_by(Incident.severity)
        ).all()
    )
    return {severity: counts.get(severity, 0) for severity in Severity}

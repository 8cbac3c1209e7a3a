"""`list_incidents`: filters, free-text search, pagination, sorting and the trigram index."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, IncidentDraft, IncidentQuery, InvalidInput, list_incidents
from bot.incidents.queries import SEVERITY_SCAN
from db.models import Incident, Severity, Status
from tests.steps import resolution

T0 = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
REPORTER = Actor("U0REPORTER")


@pytest.fixture
def db(session: Session) -> Iterator[Session]:
    # Every expectation below is an exact list, so the rolled-back transaction must start empty.
    assert session.scalar(select(func.count()).select_from(Incident)) == 0
    yield session


def declare(
    session: Session,
    title: str,
    *,
    at: datetime = T0,
    severity: Severity | str = Severity.SEV3,
    reporter: Actor = REPORTER,
    **fields: Any,
) -> Incident:
    return incidents.declare(
        session, IncidentDraft(title=title, severity=severity, **fields), reporter, now=at
    )


def move(session: Session, incident: Incident, *statuses: Status, at: datetime) -> None:
    for step, status in enumerate(statuses, start=1):
        incidents.change_status(
            session,
            incident.id,
            status,
            Actor("U0RESPONDER"),
            now=at + timedelta(minutes=step),
            resolution=resolution(status),
        )


def titles(session: Session, **query: Any) -> list[str]:
    return [i.title for i in list_incidents(session, IncidentQuery(**query)).items]


def ids(session: Session, **query: Any) -> list[int]:
    return [i.id for i in list_incidents(session, IncidentQuery(**query)).items]


# --- Filters, one at a time --------------------------------------------------------------------


@pytest.fixture
def mixed(db: Session) -> dict[str, Incident]:
    """Five incidents differing in every filtered field; created a minute apart, 'a' oldest."""
    specs = {
        "a": dict(severity="SEV1", service="Checkout-API", category="outage", owner="U1"),
        "b": dict(severity="SEV2", service="payments", category="security", assignee="U1"),
        "c": dict(severity="SEV3", service="checkout-api", category="outage", owner="U2"),
        "d": dict(severity="SEV4", service="search", owner="U2", assignee="U3"),
        "e": dict(severity="SEV1", reporter=Actor("U9OTHER"), owner="U3", assignee="U2"),
    }
    made = {}
    for n, (name, spec) in enumerate(specs.items()):
        made[name] = declare(db, f"incident {name}", at=T0 + timedelta(minutes=n), **spec)
    move(db, made["b"], Status.INVESTIGATING, at=T0 + timedelta(hours=1))
    move(db, made["c"], Status.MITIGATED, at=T0 + timedelta(hours=1))
    move(db, made["d"], Status.RESOLVED, at=T0 + timedelta(hours=1))
    move(db, made["e"], Status.CLOSED, at=T0 + timedelta(hours=1))
    return made


def test_no_filter_lists_everything_newest_first(db: Session, mixed: dict[str, Incident]) -> None:
    page = list_incidents(db, IncidentQuery())

    assert [i.title for i in page.items] == [f"incident {n}" for n in "edcba"]
    assert page.total == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (dict(statuses=[Status.OPEN]), "a"),
        (dict(statuses=[Status.RESOLVED, Status.CLOSED]), "de"),
        (dict(statuses=[Status.INVESTIGATING, Status.MITIGATED, Status.OPEN]), "abc"),
        (dict(severities=[Severity.SEV1]), "ae"),
        (dict(severities=[Severity.SEV2, Severity.SEV4]), "bd"),
        (dict(active=True), "abc"),
        (dict(active=True, statuses=[Status.MITIGATED, Status.CLOSED]), "c"),
        (dict(categories=["outage"]), "ac"),
        (dict(categories=[" Security "]), "b"),
        (dict(categories=["data"]), ""),
        (dict(services=["checkout-api"]), "ac"),
        (dict(services=["  CHECKOUT-api "]), "ac"),
        (dict(services=["checkout"]), ""),
        (dict(owners=["U2"]), "cd"),
        (dict(owners=["u2"]), ""),
        (dict(categories=["security", "OUTAGE"]), "abc"),
        (dict(services=["search", "payments"]), "bd"),
        (dict(owners=["U1", "U3"]), "ae"),
        (dict(reporter="U9OTHER"), "e"),
        (dict(reporter=REPORTER.user_id), "abcd"),
        (dict(involving="U1"), "ab"),
        (dict(involving="U2"), "cde"),
        (dict(involving="U3"), "de"),
        (dict(involving="U4"), ""),
    ],
)
def test_each_filter_alone(
    db: Session, mixed: dict[str, Incident], query: dict[str, Any], expected: str
) -> None:
    page = list_incidents(db, IncidentQuery(sort="created", descending=False, **query))

    assert [i.id for i in page.items] == [mixed[name].id for name in expected]
    assert page.total == len(expected)


def test_filters_search_pagination_and_sort_combined(db: Session) -> None:
    """Every condition at once; each decoy fails exactly one of them."""

    def make(title: str, **overrides: Any) -> Incident:
        spec: dict[str, Any] = dict(
            severity="SEV2",
            service="Checkout-API",
            owner="U1",
            description="Database connections TIMEOUT under load",
        )
        spec.update(overrides)
        status = spec.pop("status", Status.INVESTIGATING)
        incident = declare(db, title, **spec)
        if status != Status.OPEN:
            move(db, incident, status, at=T0)
        return incident

    matching = [
        make("delta"),
        make("Alpha", severity="SEV1", status=Status.OPEN),
        make("echo", owner=None, assignee="U1"),
        make("Charlie"),
        make("bravo", status=Status.MITIGATED, service="checkout-api"),
    ]
    make("decoy status", status=Status.RESOLVED)
    make("decoy severity", severity="SEV3")
    make("decoy service", service="payments")
    make("decoy person", owner="U2", assignee="U3")
    make("decoy text", description="Database connections refused")
    make("decoy timeout without the other word", description="Connection pool exhausted")

    query = dict(
        active=True,
        severities=[Severity.SEV1, Severity.SEV2],
        services=["CHECKOUT-API"],
        involving="U1",
        text="timeout  database",
        sort="title",
        descending=False,
        page_size=2,
    )
    first = list_incidents(db, IncidentQuery(page=1, **query))
    second = list_incidents(db, IncidentQuery(page=2, **query))
    third = list_incidents(db, IncidentQuery(page=3, **query))

    assert [i.title for i in first.items] == ["Alpha", "bravo"]
    assert [i.title for i in second.items] == ["Charlie", "delta"]
    assert [i.title for i in third.items] == ["echo"]
    assert {i.id for i in first.items + second.items + third.items} == {i.id for i in matching}
    assert (first.total, second.total, third.total) == (5, 5, 5)
    assert (first.pages, first.has_next, third.has_next) == (3, True, False)


# --- Free-text search --------------------------------------------------------------------------


def test_search_is_case_insensitive_over_title_description_and_service(db: Session) -> None:
    in_title = declare(db, "Payments DATABASE failover", at=T0)
    in_description = declare(
        db, "Checkout errors", description="The database pool is exhausted", at=T0 + timedelta(1)
    )
    in_service = declare(db, "Slow queries", service="Database-Primary", at=T0 + timedelta(2))
    declare(db, "Unrelated outage", description="cdn", service="edge", at=T0 + timedelta(3))

    expected = [in_title.id, in_description.id, in_service.id]
    assert ids(db, text="database", descending=False) == expected
    assert ids(db, text="DataBase", descending=False) == expected
    assert ids(db, text="  dAtAbAsE  ", descending=False) == expected
    assert ids(db, text="pool EXHAUSTED") == [in_description.id]
    assert ids(db, text="primary") == [in_service.id]


def test_every_search_word_must_match(db: Session) -> None:
    both = declare(db, "Checkout timeout", description="database pool", at=T0)
    errors = declare(db, "Checkout errors", description="database pool", at=T0 + timedelta(1))
    declare(db, "Search timeout", description="cache miss", at=T0 + timedelta(2))

    assert ids(db, text="timeout database") == [both.id]
    assert ids(db, text="database timeout checkout") == [both.id]
    assert ids(db, text="timeout database nowhere") == []
    # Words are matched anywhere and in any order, not as a phrase.
    assert ids(db, text="pool checkout", descending=False) == [both.id, errors.id]


@pytest.mark.parametrize(
    "query",
    [
        IncidentQuery(active=True, sort="updated", text="disk*"),
        IncidentQuery(sort="severity", page=2, page_size=5),
        IncidentQuery(sort="severity", text="disk", descending=False, page_size=4),
        IncidentQuery(statuses=[Status.RESOLVED], sort="title"),
    ],
)
def test_find_incidents_is_the_list_without_its_total(db: Session, query: IncidentQuery) -> None:
    for n in range(18):
        incident = declare(
            db,
            f"{'Disk full' if n % 3 else 'Diskette jam'} {n}",
            severity=list(Severity)[n % 4],
            at=T0 + timedelta(minutes=n),
        )
        if n % 5 == 0:
            incident.status = Status.RESOLVED
    db.flush()

    listed = list_incidents(db, query).items

    assert listed
    assert incidents.find_incidents(db, query) == listed


def test_blank_search_text_does_not_filter(db: Session) -> None:
    declare(db, "One", at=T0)
    declare(db, "Two", at=T0 + timedelta(1))

    assert list_incidents(db, IncidentQuery(text="   ")).total == 2
    assert list_incidents(db, IncidentQuery(text="")).total == 2
    assert list_incidents(db, IncidentQuery(text="* **")).total == 2  # stars alone are no word


@pytest.mark.parametrize(
    ("literal", "match_title", "non_match_title"),
    [
        ("100%", "Disk 100% full", "Error rate 1000 per minute"),
        ("a_b", "Job a_b failed", "Job axb failed"),
        ("%", "CPU at 95%", "CPU at 95 percent"),
        ("_", "queue_depth alarm", "queue depth alarm"),
    ],
)
def test_like_metacharacters_in_search_are_literal(
    db: Session, literal: str, match_title: str, non_match_title: str
) -> None:
    hit = declare(db, match_title, at=T0)
    declare(db, non_match_title, at=T0 + timedelta(1))

    assert ids(db, text=literal) == [hit.id]


def test_emoji_titles_round_trip_and_are_searchable(db: Session) -> None:
    fire = declare(db, "Checkout 🔥 on fire 🧯", description="Everything is 🔥", at=T0)
    party = declare(db, "Search back 🎉", service="search-🚀", at=T0 + timedelta(1))
    incident_id = fire.id
    db.expire_all()

    reloaded = db.get(Incident, incident_id)
    assert reloaded is not None
    assert reloaded.title == "Checkout 🔥 on fire 🧯"
    assert reloaded.description == "Everything is 🔥"
    assert ids(db, text="🔥") == [fire.id]
    assert ids(db, text="🧯 checkout") == [fire.id]
    assert ids(db, text="🎉") == [party.id]
    assert ids(db, text="search-🚀") == [party.id]
    assert ids(db, text="🚒") == []


# --- Pagination --------------------------------------------------------------------------------


@pytest.fixture
def seven(db: Session) -> list[Incident]:
    return [declare(db, f"incident {n}", at=T0 + timedelta(minutes=n)) for n in range(7)]


def test_pages_of_three_over_seven_incidents(db: Session, seven: list[Incident]) -> None:
    pages = [
        list_incidents(db, IncidentQuery(page=n, page_size=3, descending=False)) for n in (1, 2, 3)
    ]

    assert [[i.id for i in p.items] for p in pages] == [
        [i.id for i in seven[0:3]],
        [i.id for i in seven[3:6]],
        [seven[6].id],
    ]
    assert [(p.total, p.pages, p.page, p.page_size) for p in pages] == [
        (7, 3, 1, 3),
        (7, 3, 2, 3),
        (7, 3, 3, 3),
    ]
    assert [p.has_next for p in pages] == [True, True, False]


def test_page_past_the_end_is_empty_with_the_total(db: Session, seven: list[Incident]) -> None:
    page = list_incidents(db, IncidentQuery(page=4, page_size=3))

    assert page.items == []
    assert (page.total, page.pages, page.has_next) == (7, 3, False)

    far = list_incidents(db, IncidentQuery(page=1000, page_size=3))
    assert (far.items, far.total) == ([], 7)


def test_exact_multiple_of_the_page_size(db: Session, seven: list[Incident]) -> None:
    page = list_incidents(db, IncidentQuery(page=1, page_size=7))
    assert (len(page.items), page.pages, page.has_next) == (7, 1, False)

    one_each = list_incidents(db, IncidentQuery(page=7, page_size=1))
    assert ([i.id for i in one_each.items], one_each.pages) == ([seven[0].id], 7)
    assert not one_each.has_next


def test_no_results_is_one_empty_page(db: Session) -> None:
    page = list_incidents(db, IncidentQuery(text="nothing"))

    assert (page.items, page.total, page.pages, page.has_next) == ([], 0, 1, False)


# --- Sorting -----------------------------------------------------------------------------------


def test_sort_by_created_with_id_tie_breaker(db: Session) -> None:
    early_1 = declare(db, "early one", at=T0)
    late = declare(db, "late", at=T0 + timedelta(hours=2))
    early_2 = declare(db, "early two", at=T0)
    middle = declare(db, "middle", at=T0 + timedelta(hours=1))

    assert ids(db, sort="created", descending=False) == [
        early_1.id,
        early_2.id,
        middle.id,
        late.id,
    ]
    assert ids(db, sort="created", descending=True) == [
        late.id,
        middle.id,
        early_2.id,
        early_1.id,
    ]


def test_sort_by_updated_with_id_tie_breaker(db: Session) -> None:
    touched_last = declare(db, "declared first", at=T0)
    untouched = declare(db, "declared second", at=T0 + timedelta(hours=1))
    same_a = declare(db, "declared third", at=T0 + timedelta(hours=2))
    same_b = declare(db, "declared fourth", at=T0 + timedelta(hours=2))
    incidents.add_note(db, touched_last.id, REPORTER, "still on it", now=T0 + timedelta(hours=5))

    assert ids(db, sort="updated", descending=False) == [
        untouched.id,
        same_a.id,
        same_b.id,
        touched_last.id,
    ]
    assert ids(db, sort="updated", descending=True) == [
        touched_last.id,
        same_b.id,
        same_a.id,
        untouched.id,
    ]


def test_sort_by_severity_with_id_tie_breaker(db: Session) -> None:
    sev3 = declare(db, "sev3", severity="SEV3", at=T0)
    sev1_a = declare(db, "sev1 a", severity="SEV1", at=T0 + timedelta(1))
    sev4 = declare(db, "sev4", severity="SEV4", at=T0 + timedelta(2))
    sev1_b = declare(db, "sev1 b", severity="SEV1", at=T0 - timedelta(1))
    sev2 = declare(db, "sev2", severity="SEV2", at=T0 + timedelta(3))

    # Descending severity (the default direction) means most severe first.
    assert ids(db, sort="severity", descending=True) == [
        sev1_b.id,
        sev1_a.id,
        sev2.id,
        sev3.id,
        sev4.id,
    ]
    assert ids(db, sort="severity", descending=False) == [
        sev4.id,
        sev3.id,
        sev2.id,
        sev1_a.id,
        sev1_b.id,
    ]


def test_sort_by_status_follows_the_workflow_not_the_alphabet(db: Session) -> None:
    # Alphabetically: closed < investigating < mitigated < open < resolved.
    made: dict[Status, list[Incident]] = {}
    for n, status in enumerate([Status.CLOSED, Status.OPEN, Status.RESOLVED, Status.MITIGATED]):
        incident = declare(db, f"{status.value}", at=T0 + timedelta(minutes=n))
        if status != Status.OPEN:
            move(db, incident, status, at=T0 + timedelta(hours=1))
        made[status] = [incident]
    for extra in (Status.INVESTIGATING, Status.INVESTIGATING, Status.OPEN):
        incident = declare(db, f"{extra.value} too", at=T0 - timedelta(hours=1))
        if extra != Status.OPEN:
            move(db, incident, extra, at=T0)
        made.setdefault(extra, []).append(incident)

    ascending = list_incidents(db, IncidentQuery(sort="status", descending=False)).items
    descending = list_incidents(db, IncidentQuery(sort="status", descending=True)).items

    assert [i.status for i in ascending] == [
        Status.OPEN,
        Status.OPEN,
        Status.INVESTIGATING,
        Status.INVESTIGATING,
        Status.MITIGATED,
        Status.RESOLVED,
        Status.CLOSED,
    ]
    expected_ids = [i.id for s in incidents.WORKFLOW_ORDER for i in sorted(made[s], key=_id)]
    assert [i.id for i in ascending] == expected_ids
    expected_desc = [
        i.id for s in reversed(incidents.WORKFLOW_ORDER) for i in sorted(made[s], key=_neg_id)
    ]
    assert [i.id for i in descending] == expected_desc


def _id(incident: Incident) -> int:
    return incident.id


def _neg_id(incident: Incident) -> int:
    return -incident.id


def test_sort_by_title_is_case_insensitive_with_id_tie_breaker(db: Session) -> None:
    for n, title in enumerate(["cherry", "Banana", "apple", "BANANA", "Apple pie", "banana"]):
        declare(db, title, at=T0 + timedelta(minutes=n))

    ascending = list_incidents(db, IncidentQuery(sort="title", descending=False)).items
    descending = list_incidents(db, IncidentQuery(sort="title", descending=True)).items

    assert [i.title for i in ascending] == [
        "apple",
        "Apple pie",
        "Banana",
        "BANANA",
        "banana",
        "cherry",
    ]
    assert [i.title for i in descending] == [
        "cherry",
        "banana",
        "BANANA",
        "Banana",
        "Apple pie",
        "apple",
    ]


# --- Bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sort", ["priority", "Created", "id", "", "created_at; drop table x"])
def test_unknown_sort_key_is_refused_listing_the_valid_ones(db: Session, sort: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        list_incidents(db, IncidentQuery(sort=sort))

    assert raised.value.field == "sort"
    assert str(raised.value) == (
        f"Can't sort by {sort!r}. Use one of: created, updated, severity, status, title."
    )


@pytest.mark.parametrize("page_size", [0, -1, 101, 1000])
def test_page_size_out_of_range_is_refused(db: Session, page_size: int) -> None:
    with pytest.raises(InvalidInput, match=r"^Page size must be between 1 and 100\.$") as raised:
        list_incidents(db, IncidentQuery(page_size=page_size))
    assert raised.value.field == "page_size"


@pytest.mark.parametrize("page_size", [1, 100])
def test_page_size_limits_are_accepted(db: Session, page_size: int) -> None:
    for n in range(3):
        declare(db, f"incident {n}", at=T0 + timedelta(minutes=n))

    page = list_incidents(db, IncidentQuery(page_size=page_size))

    assert len(page.items) == min(3, page_size)
    assert page.pages == (3 if page_size == 1 else 1)


@pytest.mark.parametrize("page", [0, -3, 10_000_001, 2**63])
def test_page_outside_the_numbered_range_is_refused(db: Session, page: int) -> None:
    with pytest.raises(
        InvalidInput, match=r"^Pages are numbered from 1 to 10,000,000\.$"
    ) as raised:
        list_incidents(db, IncidentQuery(page=page))
    assert raised.value.field == "page"


# --- Words, prefixes and the search index ------------------------------------------------------


def test_search_matches_whole_words_and_a_star_matches_their_beginnings(db: Session) -> None:
    crash = declare(db, "Crash loop after deploy", service="checkout-api", at=T0)
    trash = declare(db, "Trash bin full", at=T0 + timedelta(1))
    crashes = declare(db, "Crashes everywhere", at=T0 + timedelta(2))

    assert ids(db, text="crash") == [crash.id]
    assert ids(db, text="cra") == []  # not a word of any of them
    assert ids(db, text="cra*") == [crashes.id, crash.id]
    assert ids(db, text="ash*") == []  # a word's middle is not its beginning
    assert ids(db, text="rash") == []
    assert ids(db, text="trash") == [trash.id]
    # A hyphenated service is found whole and by each of its parts.
    assert ids(db, text="checkout-api") == [crash.id]
    assert ids(db, text="checkout") == [crash.id]
    assert ids(db, text="api loop") == [crash.id]
    assert ids(db, text="checkout-ap*") == [crash.id]
    # Punctuation between words is not searched for: "C:temp" and "C:\temp" are the words c, temp.
    path = declare(db, "Path C:temp missing", at=T0 + timedelta(3))
    assert ids(db, text="C:\\temp") == [path.id]


@pytest.mark.parametrize(
    "typed",
    [
        "'",
        "''",
        "a'b",
        "&",
        "a & b",
        "a | b",
        "!a",
        "a:*",
        "a:A",
        "(a",
        "a)",
        "a <-> b",
        "\\",
        "a\\",
        "'a' | 'b",
        "*a",
        ":",
        "a:*B",
    ],
)
def test_search_syntax_in_what_people_type_is_only_text(db: Session, typed: str) -> None:
    """What people type is quoted word by word: tsquery's operators are never interpreted and
    never an error."""
    plain = declare(db, "a b c", at=T0)
    declare(db, "d e f", at=T0 + timedelta(1))

    found = ids(db, text=typed)

    assert found in ([], [plain.id])


def test_search_with_only_symbols_matches_them_as_written(db: Session) -> None:
    percent = declare(db, "CPU at 95%", at=T0)
    declare(db, "CPU at 95 percent", at=T0 + timedelta(1))

    assert ids(db, text="%") == [percent.id]
    assert ids(db, text="% cpu") == [percent.id]
    assert ids(db, text="%%") == []


def test_search_index_is_a_gin_index_on_the_search_vector(db: Session) -> None:
    definition = db.scalar(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_incidents_search_vector'")
    )

    assert definition is not None
    assert "USING gin (search_vector)" in definition


def test_a_rare_word_is_found_through_the_search_index(db: Session) -> None:
    # Enough rows that a few matches out of many make the index the obvious plan.
    db.execute(
        text(
            "INSERT INTO incidents (title, description, service, severity, status, reporter,"
            " created_at, updated_at)"
            " SELECT 'Routine incident ' || n, 'nothing to see ' || n, 'svc-' || (n % 40),"
            " 'SEV3', 'open', 'U0BULK', t, t"
            " FROM generate_series(1, 3000) AS n,"
            " LATERAL (SELECT :t0 - make_interval(mins => n) AS t) AS at"
        ),
        {"t0": T0},
    )
    needle = declare(db, "Kafka consumer lag", description="partition rebalancing storm", at=T0)
    # Rows inserted in this (never committed) transaction wait in the GIN pending list, which the
    # planner prices as a full scan of the list; autovacuum would merge it on a real database.
    db.execute(text("SELECT gin_clean_pending_list('ix_incidents_search_vector')"))
    db.execute(text("ANALYZE incidents"))

    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    connection = db.connection()
    event.listen(connection, "before_cursor_execute", capture)
    try:
        page = list_incidents(db, IncidentQuery(text="rebalancing KAFKA"))
    finally:
        event.remove(connection, "before_cursor_execute", capture)

    assert [i.id for i in page.items] == [needle.id]
    assert page.total == 1
    searches = [(s, p) for s, p in statements if "search_vector" in s]
    assert len(searches) == 1  # the page and its count, in one statement
    statement, parameters = searches[0]
    plan = "\n".join(
        row[0] for row in connection.exec_driver_sql("EXPLAIN " + statement, parameters)
    )
    # One scan of the search index finds the matches the page is cut from and counted.
    assert len(re.findall(r"on ix_incidents_search_vector\b", plan)) == 1, plan


def test_a_search_sorted_by_severity_finds_what_a_severity_holds_few_of(db: Session) -> None:
    """SEV1 holds more incidents than one severity's ordered scan reads, and its only matches
    are its oldest: they are found all the same, in order, page after page."""
    bulk = (
        "INSERT INTO incidents (title, severity, status, reporter) "
        "SELECT :title || g, :severity, :status, 'U0BULK' FROM generate_series(1, :n) AS g"
    )
    db.execute(
        text(bulk), {"title": "Kafka lag ", "severity": "SEV1", "status": "resolved", "n": 3}
    )
    db.execute(
        text(bulk),
        {"title": "Routine ", "severity": "SEV1", "status": "resolved", "n": 2 * SEVERITY_SCAN},
    )
    db.execute(
        text(bulk), {"title": "Kafka broker ", "severity": "SEV2", "status": "closed", "n": 30}
    )
    db.execute(text(bulk), {"title": "Kafka noise ", "severity": "SEV4", "status": "open", "n": 10})
    kafka = "SELECT id FROM incidents WHERE title LIKE 'Kafka%' "
    expected = list(db.scalars(text(kafka + "ORDER BY severity, id DESC")))
    assert len(expected) == 43

    pages = [
        list_incidents(db, IncidentQuery(text="kafka", sort="severity", page=n, page_size=10))
        for n in range(1, 6)
    ]

    assert [i.id for page in pages for i in page.items] == expected
    assert {(page.total, page.total_is_exact) for page in pages} == {(43, True)}
    assert [page.has_next for page in pages] == [True] * 4 + [False]
    assert ids(db, text="kafka", sort="severity", descending=False, page_size=100) == list(
        db.scalars(text(kafka + "ORDER BY severity DESC, id"))
    )
    assert ids(
        db,
        text="kafka",
        sort="severity",
        severities=[Severity.SEV4, Severity.SEV1],
        statuses=[Status.RESOLVED, Status.OPEN],
        page_size=100,
    ) == list(
        db.scalars(text(kafka + "AND severity IN ('SEV1', 'SEV4') ORDER BY severity, id DESC"))
    )


def test_totals_are_counted_ahead_of_the_page_and_say_so_past_that(db: Session) -> None:
    ahead = incidents.COUNT_AHEAD
    matches = ahead + 45
    db.execute(
        text(
            "INSERT INTO incidents (title, severity, status, reporter) "
            "SELECT 'bulk incident ' || g, 'SEV3', 'open', 'U0BULK' "
            "FROM generate_series(1, :n) AS g"
        ),
        {"n": matches},
    )

    def listed(page: int) -> tuple[int, bool, int | None, int, bool]:
        found = list_incidents(db, IncidentQuery(page_size=20, page=page))
        return found.total, found.total_is_exact, found.pages, len(found.items), found.has_next

    assert listed(1) == (ahead, False, None, 20, True)
    # Each page counts as far ahead of itself: page 3 as far as its start (40) plus `ahead`.
    assert listed(3) == (40 + ahead, False, None, 20, True)
    # From page 4 on, every match is within reach: the total is exact.
    assert listed(4) == (matches, True, 13, 20, True)
    assert listed(13) == (matches, True, 13, 5, False)
    assert listed(14) == (matches, True, 13, 0, False)  # past the end: counted on its own
    assert listed(99) == (matches, True, 13, 0, False)

    # 2, 20..29 and 200..245: fewer than `ahead`, so exact from the first page.
    exact = list_incidents(db, IncidentQuery(text="bulk incident 2*", page_size=20))
    assert (exact.total, exact.total_is_exact, exact.pages) == (57, True, 3)

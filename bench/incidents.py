"""Benchmark: the list queries and a status change on 100,000 incidents (COUNT=1000000 for a
million).

    make bench                                    # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench COUNT=1000000 # a throwaway database on that server

Each list case is measured at the domain call (`list_incidents`, what every surface calls) and
beside its floor, the best hand-written SQL for the same result on a raw psycopg2 cursor, in the
same run; p50/p95 of each and the p95 ratio. Seeding is done in SQL (generate_series) because
going through the domain for 100,000 incidents would take minutes and measure nothing we care
about here.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bench import bench_database
from bot import incidents
from bot.incidents import Actor, IncidentQuery, IncidentRow
from bot.web.api import incident_query
from db import migrate
from db.models import Severity, Status
from db.session import make_engine, make_session_factory

SEED_SQL = """
WITH src AS (
    SELECT g,
           (ARRAY['checkout-api','payments','search','auth','notifications','web-frontend',
                  'billing','inventory','data-pipeline','cdn','mobile-gateway','postgres-primary'])
               [1 + (g % 12)] AS service,
           (ARRAY['Elevated 5xx errors on','Latency p99 above 2s on','Outage of',
                  'Timeouts calling','Crash loop after deploy of','Stale data from',
                  'Queue backlog growing on','Disk almost full on'])[1 + ((g * 7) % 8)] AS symptom,
           now() - make_interval(mins => (g * 37) % (730 * 24 * 60)) AS created,
           random() AS r
    FROM generate_series(1, :count) AS g
)
INSERT INTO incidents (title, description, service, severity, status, category, reporter, owner,
                       created_at, updated_at, acknowledged_at, mitigated_at, resolved_at,
                       closed_at)
SELECT symptom || ' ' || service || ' #' || g,
       'Alert fired for ' || service || '. Customers affected in region ' || (g % 5) || '.',
       service,
       (ARRAY['SEV1','SEV2','SEV3','SEV3','SEV4','SEV4'])[1 + (g % 6)],
       CASE WHEN r < 0.03 THEN 'open' WHEN r < 0.06 THEN 'investigating'
            WHEN r < 0.08 THEN 'mitigated' WHEN r < 0.20 THEN 'resolved' ELSE 'closed' END,
       (ARRAY['outage','degradation','security','data','other'])[1 + (g % 5)],
       'U0USER' || lpad((g % 50)::text, 4, '0'),
       'U0USER' || lpad(((g * 3) % 50)::text, 4, '0'),
       created, created,
       CASE WHEN r >= 0.03 THEN created + interval '5 minutes' END,
       CASE WHEN r >= 0.06 THEN created + interval '40 minutes' END,
       CASE WHEN r >= 0.08 THEN created + interval '2 hours' END,
       CASE WHEN r >= 0.20 THEN created + interval '3 days' END
FROM src
"""
EVENTS_SQL = """
INSERT INTO incident_events (incident_id, kind, actor, occurred_at, to_value)
SELECT id, 'created', reporter, created_at, severity FROM incidents
"""


def seed(engine: Engine, count: int) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(SEED_SQL), {"count": count})
        connection.execute(text(EVENTS_SQL))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def percentiles(timings: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[94]


def measure(runs: int, action: Callable[[int], object]) -> tuple[float, float]:
    timings = []
    for run in range(runs):
        started = time.perf_counter()
        action(run)
        timings.append((time.perf_counter() - started) * 1000)
    return percentiles(timings)


def side_by_side(
    runs: int, ours: Callable[[int], object], theirs: Callable[[int], object]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Both in turn, run after run, so what the machine does meanwhile falls on both alike."""
    timings: tuple[list[float], list[float]] = ([], [])
    for run in range(runs):
        for action, kept in ((ours, timings[0]), (theirs, timings[1])):
            started = time.perf_counter()
            action(run)
            kept.append((time.perf_counter() - started) * 1000)
    return percentiles(timings[0]), percentiles(timings[1])


ACTIVE = ["open", "investigating", "mitigated"]
COLUMNS = "id, title, severity, status, service, owner, assignee, created_at, updated_at"
WORDS_MATCH = "search_vector @@ to_tsquery('pg_catalog.simple', %(words)s)"


def page_sql(where: str, order: str, limit: int = 21, offset: int = 0, count: bool = True) -> str:
    """A page, and its total counted 200 past the page's start, as the domain answers a list:
    the matches in order as far as the count goes, numbered, the page cut from them."""
    if not count:
        return f"SELECT {COLUMNS} FROM incidents WHERE {where} ORDER BY {order} LIMIT {limit}"
    return (
        f"WITH ahead AS (SELECT {COLUMNS}, row_number() OVER (ORDER BY {order}) AS n "
        f"FROM incidents WHERE {where} ORDER BY {order} LIMIT {offset + 201}) "
        f"SELECT {COLUMNS}, (SELECT count(*) FROM ahead) FROM ahead WHERE n > {offset} "
        f"ORDER BY n LIMIT {limit}"
    )


# The floors: the best hand-written SQL for each case's result, run on a raw psycopg2 cursor.
# Their plans at 1,000,000 incidents on PostgreSQL 15 (`--explain` prints them; abridged). Each
# list reads its matches in order, through an index in that order, only as far as its count
# goes (201 past the page's start); the page is cut from them.
#   active  Index Scan Backward using ix_incidents_active_created_id  rows=201, 1.3 ms
#   search  Index Scan Backward using ix_incidents_created_id, Filter: search_vector @@
#           'region' & '3' & 'crash', Rows Removed by Filter: 7851; rows=201, 9.2 ms. (Through
#           the GIN index instead, the 25,000 matches would all be read and sorted: 40 ms.)
#   picker  Index Scan Backward using ix_incidents_active_updated_id, Filter: search_vector @@
#           'cra':*, Rows Removed by Filter: 178; rows=21, 0.5 ms (no count)
#   home    Index Scan using ix_incidents_active_severity_id  rows=41, 0.1 ms (no count)
#   deep    Index Scan Backward using ix_incidents_created_id  rows=1181, 3.9 ms
#   api     Index Scan Backward using ix_incidents_active_updated_id, Filter: severity and
#           lower(service), Rows Removed by Filter: 2219; rows=201, 8.0 ms
#   mixed   by created or updated: as search, through ix_incidents_created_id or _updated_id;
#           by severity: mixed_floor's two statements per severity, in id order through
#           pk_incidents for at most 2,000 rows, then Bitmap Index Scan on
#           ix_incidents_search_vector_sev1 for a severity the words are rare in (0.1 ms)
FLOORS: dict[str, str] = {
    "active": page_sql("status = ANY(%(active)s)", "created_at DESC, id DESC"),
    "search": page_sql(WORDS_MATCH, "created_at DESC, id DESC"),
    "picker": page_sql(
        f"status = ANY(%(active)s) AND {WORDS_MATCH}", "updated_at DESC, id DESC", count=False
    ),
    "home": page_sql("status = ANY(%(active)s)", "severity, id DESC", limit=41, count=False),
    "deep": page_sql("TRUE", "created_at DESC, id DESC", offset=49 * 20),
    "api": page_sql(
        "status = ANY(%(statuses)s) AND severity = ANY(%(severities)s) "
        "AND lower(service) = ANY(%(services)s)",
        "updated_at DESC, id DESC",
    ),
}
FLOOR_PARAMS: dict[str, dict[str, object]] = {
    "active": {"active": ACTIVE},
    "search": {"words": "'region' & '3' & 'crash'"},
    "picker": {"active": ACTIVE, "words": "'cra':*"},
    "home": {"active": ACTIVE},
    "deep": {},
    "api": {
        "statuses": ACTIVE,
        "severities": ["SEV1", "SEV2"],
        "services": ["payments", "search"],
    },
}


# The seeds' mixed case: resolved or closed SEV1/SEV2 incidents, a word, a sort and a page, all
# varying from run to run (the same sequence for the domain and its floor).
WORDS = ("checkout", "latency", "payments", "outage", "5xx", "crash", "queue", "region 3", "disk")
ORDERS = {
    "created": "created_at DESC, id DESC",
    "updated": "updated_at DESC, id DESC",
    "severity": "severity, id DESC",
}
_rng = random.Random(42)
MIXED = [(_rng.choice(WORDS), _rng.choice(list(ORDERS)), _rng.randint(1, 3)) for _ in range(64)]
MIXED_WHERE = f"status IN ('resolved', 'closed') AND {WORDS_MATCH}"


def mixed_query(run: int) -> IncidentQuery:
    words, sort, page = MIXED[run % len(MIXED)]
    return IncidentQuery(
        statuses=[Status.RESOLVED, Status.CLOSED],
        severities=[Severity.SEV1, Severity.SEV2],
        text=words,
        sort=sort,
        page=page,
    )


def mixed_floor(cursor: Any, run: int) -> list[Any]:
    words, sort, page = MIXED[run % len(MIXED)]
    params = {"words": " & ".join(f"'{word}'" for word in words.split())}
    offset = (page - 1) * 20
    if sort != "severity":
        where = f"{MIXED_WHERE} AND severity IN ('SEV1', 'SEV2')"
        cursor.execute(page_sql(where, ORDERS[sort], offset=offset), params)
        return cursor.fetchall()
    # By severity, each severity on its own: in id order for at most 2,000 rows, then, if its
    # matches are rarer than that, the rest from its own partial search index.
    found: list[Any] = []
    for severity in ("SEV1", "SEV2"):
        need = offset + 201 - len(found)
        cursor.execute(
            f"SELECT {COLUMNS} FROM (SELECT {COLUMNS}, {MIXED_WHERE} AS hit FROM incidents "
            f"WHERE severity = '{severity}' ORDER BY id DESC LIMIT {max(2000, 10 * need)}) s "
            f"WHERE hit ORDER BY id DESC LIMIT {need}",
            params,
        )
        rows = cursor.fetchall()
        if len(rows) < need:
            past = f"AND id < {rows[-1][0]}" if rows else ""
            cursor.execute(
                f"SELECT {COLUMNS} FROM incidents WHERE {MIXED_WHERE} AND severity = "
                f"'{severity}' {past} ORDER BY id + 0 DESC LIMIT {need - len(rows)}",
                params,
            )
            rows += cursor.fetchall()
        found += rows
    return [(*row, len(found)) for row in found[offset : offset + 21]]


def explain(engine: Engine) -> None:
    """Each floor's plan, as the comment over FLOORS abridges them."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for key, sql in FLOORS.items():
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, FLOOR_PARAMS[key])
                print(f"\n-- {key}\n" + "\n".join(row[0] for row in cursor.fetchall()))
    finally:
        raw.rollback()
        raw.close()


def run(engine: Engine, runs: int) -> None:
    sessions = make_session_factory(engine)

    def domain(
        query: IncidentQuery | Callable[[int], IncidentQuery], counted: bool
    ) -> Callable[[int], list[IncidentRow]]:
        # The picker and the Home tab show no total: they call find_incidents, the rest list.
        def action(run: int) -> list[IncidentRow]:
            asked = query if isinstance(query, IncidentQuery) else query(run)
            with sessions() as session:
                if counted:
                    return incidents.list_incidents(session, asked).items
                return incidents.find_incidents(session, asked)

        return action

    def floor(key: str) -> Callable[[int], list[Any]]:
        def action(run: int) -> list[Any]:
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cursor:
                    if key == "mixed":
                        return mixed_floor(cursor, run)
                    cursor.execute(FLOORS[key], FLOOR_PARAMS[key])
                    return cursor.fetchall()
            finally:
                raw.rollback()
                raw.close()

        return action

    api_query = incident_query(
        {
            "status": ["open", "investigating", "mitigated"],
            "severity": ["SEV1", "SEV2"],
            "service": ["payments", "search"],
            "sort": "-updated",
            "page": 1,
            "limit": 20,
        }
    )
    cases: list[tuple[str, str, IncidentQuery | Callable[[int], IncidentQuery]]] = [
        ("active, newest first, page 1", "active", IncidentQuery(active=True)),
        ("status + severity filters + search + sort + page", "mixed", mixed_query),
        ("search only (3 broad words), page 1", "search", IncidentQuery(text="region 3 crash")),
        (
            "picker type-ahead (a 3-letter prefix)",
            "picker",
            IncidentQuery(active=True, sort="updated", text="cra*"),
        ),
        (
            "App Home (active, by severity)",
            "home",
            IncidentQuery(active=True, sort="severity", page_size=40),
        ),
        ("deep page (page 50 of all, newest first)", "deep", IncidentQuery(page=50)),
        ("REST API list, comma-separated filters", "api", api_query),
    ]
    print(
        f"\n{'case':50} {'p50 ms':>8} {'p95 ms':>8} {'floor p50':>10} {'p95':>8} {'p95 ratio':>9}"
        f"   ({runs} runs each)"
    )
    for name, key, query in cases:
        ours, theirs = domain(query, counted=key not in ("picker", "home")), floor(key)
        for run in range(len(MIXED) if key == "mixed" else 1):  # warm up, and check the floor
            items, rows = ours(run), theirs(run)
            if [i.id for i in items] != [r[0] for r in rows[: len(items)]] or not items:
                print(f"  {name}: the floor's rows differ from the domain's ({run})")
        (p50, p95), (f50, f95) = side_by_side(runs, ours, theirs)
        print(f"{name:50} {p50:8.2f} {p95:8.2f} {f50:10.2f} {f95:8.2f} {p95 / f95:8.2f}x")
    status_change(sessions, runs)


def status_change(sessions: sessionmaker[Session], runs: int) -> None:
    with sessions() as session:
        active_ids = [
            i.id
            for i in incidents.list_incidents(
                session, IncidentQuery(statuses=[Status.OPEN], page_size=100)
            ).items
        ]
    actor = Actor("U0BENCH")
    # Each open incident walks forward, so every measured change is a real, allowed one.
    moves = iter(
        [
            (i, s)
            for s in (Status.INVESTIGATING, Status.MITIGATED, Status.RESOLVED)
            for i in active_ids
        ]
    )

    def change(_: int) -> object:
        incident_id, target = next(moves)
        with sessions.begin() as session:
            return incidents.change_status(session, incident_id, target, actor)

    change(0)
    p50, p95 = measure(min(runs, 2 * len(active_ids)), change)
    print(f"{'status change (lock, event, commit)':50} {p50:8.2f} {p95:8.2f}")


def upgrade_under_load(engine: Engine) -> None:
    """Upgrade to head while a stand-in for a running bot changes and lists incidents every
    50 ms with SQL both schemas accept, and say how long the upgrade and its worst stall took."""
    done = threading.Event()
    stalls: list[float] = []

    def bot() -> None:
        rng = random.Random(7)
        with engine.connect() as connection:
            last = connection.execute(text("SELECT max(id) FROM incidents")).scalar_one()
            while not done.is_set():
                started = time.perf_counter()
                connection.execute(
                    text("UPDATE incidents SET updated_at = now() WHERE id = :id"),
                    {"id": rng.randint(1, last)},
                )
                connection.execute(
                    text(
                        "SELECT id FROM incidents WHERE status = 'open' "
                        "ORDER BY created_at DESC LIMIT 20"
                    )
                )
                connection.commit()
                stalls.append((time.perf_counter() - started) * 1000)
                done.wait(0.05)

    running = threading.Thread(target=bot, daemon=True)
    running.start()
    started = time.perf_counter()
    migrate.upgrade(engine)
    took = time.perf_counter() - started
    done.set()
    running.join()
    print(
        f"  upgraded to head in {took:.1f} s; meanwhile {len(stalls)} changes and lists took "
        f"p50 {statistics.median(stalls):.1f} ms, the slowest {max(stalls):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=int(os.environ.get("COUNT") or 100_000))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--upgrade-from",
        default=os.environ.get("UPGRADE_FROM") or None,
        help="seed at this revision, then time the upgrade to head under load (e.g. 0005)",
    )
    parser.add_argument("--explain", action="store_true", help="print the floors' plans first")
    args = parser.parse_args()
    with bench_database() as url:
        engine = make_engine(url)
        if args.upgrade_from:
            config = migrate.alembic_config()
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, args.upgrade_from)
            print(f"Seeding {args.count:,} incidents at revision {args.upgrade_from} ...")
            print(f"  seeded in {seed(engine, args.count):.1f} s")
            upgrade_under_load(engine)
        else:
            migrate.upgrade(engine)
            print(f"Seeding {args.count:,} incidents ...", flush=True)
            print(f"  seeded in {seed(engine, args.count):.1f} s")
        if args.explain:
            explain(engine)
        run(engine, args.runs)
        engine.dispose()


if __name__ == "__main__":
    main()

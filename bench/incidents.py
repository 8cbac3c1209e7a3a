"""Benchmark: the list query and a status change on 100,000 incidents.

    make bench                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench # a throwaway database on that server

Prints p50/p95 latencies. Seeding is done in SQL (generate_series) because going through the
domain for 100,000 incidents would take minutes and measure nothing we care about here.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Engine, text

from bench import bench_database
from bot import incidents
from bot.incidents import Actor, IncidentQuery
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

WORDS = ("checkout", "latency", "payments", "outage", "5xx", "crash", "queue", "region 3", "disk")


def seed(engine: Engine, count: int) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(SEED_SQL), {"count": count})
        connection.execute(text(EVENTS_SQL))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def measure(runs: int, action: Callable[[int], object]) -> tuple[float, float]:
    timings = []
    for run in range(runs):
        started = time.perf_counter()
        action(run)
        timings.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(timings, n=100)
    return cuts[49], cuts[94]


def run(engine: Engine, count: int, runs: int) -> None:
    print(f"Seeding {count:,} incidents ...", flush=True)
    print(f"  seeded in {seed(engine, count):.1f} s")
    sessions = make_session_factory(engine)
    rng = random.Random(42)

    def list_query(query: IncidentQuery) -> Callable[[int], object]:
        def action(_: int) -> object:
            with sessions() as session:
                return incidents.list_incidents(session, query)

        return action

    def combined(_: int) -> object:
        query = IncidentQuery(
            statuses=[Status.RESOLVED, Status.CLOSED],
            severities=[Severity.SEV1, Severity.SEV2],
            text=rng.choice(WORDS),
            sort=rng.choice(("created", "updated", "severity")),
            page=rng.randint(1, 3),
            page_size=20,
        )
        with sessions() as session:
            return incidents.list_incidents(session, query)

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

    def status_change(_: int) -> object:
        incident_id, target = next(moves)
        with sessions.begin() as session:
            return incidents.change_status(session, incident_id, target, actor)

    cases = [
        ("list: active, newest first, page 1", list_query(IncidentQuery(active=True))),
        ("list: status+severity filters + search + sort + page", combined),
        (
            "list: search only (3 words, broad), page 1",
            list_query(IncidentQuery(text="region 3 crash")),
        ),
        ("status change (lock, event, commit)", status_change),
    ]
    print(f"\n{'case':58} {'p50 ms':>8} {'p95 ms':>8}   ({runs} runs each)")
    for name, action in cases:
        action(0)  # warm the pool and caches once
        p50, p95 = measure(
            min(runs, 2 * len(active_ids)) if action is status_change else runs, action
        )
        print(f"{name:58} {p50:8.2f} {p95:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with bench_database() as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        run(engine, args.count, args.runs)
        engine.dispose()


if __name__ == "__main__":
    main()

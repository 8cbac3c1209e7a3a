"""Benchmark: is migration 0009 safe on a large `incidents` table while the previous release runs?

    TEST_DATABASE_URL=... BENCH_COUNT=1000000 .venv/bin/python -m bench.migration_0009

A throwaway database at revision 0008 is seeded in SQL (generate_series, as bench.incidents does)
with BENCH_COUNT incidents (1,000,000 unless set), one `created` event each, and about 4% of them
active without an owner, for the backfill of `leaderless_since` to work on. Then, in one run:

- phase A: a stand-in for the running bot alone for BENCH_BASELINE seconds (10): in a loop, each
  its own transaction, an UPDATE of the `updated_at` of a random incident, then of a random
  active one (what people work on, and what the backfill rewrites), an INSERT into
  `incident_events` and the active list's page (bench.incidents.page_sql), SQL that both
  schemas accept; each statement's latency, commit included, is kept;
- phase B: the same, while `alembic upgrade 0009` runs on its own connection, the way
  db.migrate.upgrade hands it one.

Meanwhile a monitor polls pg_stat_activity every 20 ms for backends waiting on a lock and notes
who waits, on what lock, behind which statement of whom, and for how long; every statement of the
migration is timed too. The table gives p50/p99/max per phase and per statement, the ratios B/A
and the longest single wait, what it waited behind, then PASS when no statement of the bot took
1 s or more during the upgrade. After the upgrade it checks the backfill (every active incident
without an owner has `leaderless_since = created_at`, no other incident has one), the two new
indexes valid and the two swapped CHECK constraints validated. The models' agreement with the
schema (`alembic check`) is tests/test_migrations.py's business, not this bench's.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alembic import command
from sqlalchemy import Engine, event, text

from bench import bench_database
from bench.incidents import EVENTS_SQL, SEED_SQL, page_sql
from db import migrate
from db.session import make_engine

BEFORE, TARGET = "0008", "0009"
LIMIT_MS = 1000.0
ACTIVE = ["open", "investigating", "mitigated"]
ACTIVE_SQL = "status IN ('open', 'investigating', 'mitigated')"
# About half the active incidents (8% of all) lose their owner: the backfill's work.
OWNERLESS_SQL = f"UPDATE incidents SET owner = NULL WHERE {ACTIVE_SQL} AND id % 2 = 0"
LIST_SQL = page_sql("status = ANY(%(active)s)", "created_at DESC, id DESC")
UPDATE_SQL = "UPDATE incidents SET updated_at = now() WHERE id = %(id)s"
INSERT_SQL = (
    "INSERT INTO incident_events (incident_id, kind, actor, occurred_at, text) "
    "VALUES (%(id)s, 'note', 'U0BENCH', now(), 'still looking')"
)
# Who waits for a lock in this database, on which lock, behind whom doing what.
WAITING_SQL = """
SELECT w.pid, w.query, clock_timestamp() - w.query_start AS waited,
       l.locktype, l.relation::regclass::text, l.mode,
       b.pid, b.state, b.query
FROM pg_stat_activity w
JOIN pg_locks l ON l.pid = w.pid AND NOT l.granted
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid)
JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE w.datname = current_database() AND w.wait_event_type = 'Lock'
"""
BACKFILL_SQL = (
    "UPDATE incidents SET leaderless_since = created_at WHERE id IN ("
    f"SELECT id FROM incidents WHERE {ACTIVE_SQL} AND owner IS NULL "
    "AND leaderless_since IS NULL LIMIT 5000)"
)
CHECK_SQL = f"""
SELECT count(*) FILTER (WHERE {ACTIVE_SQL} AND owner IS NULL),
       count(*) FILTER (WHERE {ACTIVE_SQL} AND owner IS NULL
                        AND leaderless_since IS NOT DISTINCT FROM created_at),
       count(*) FILTER (WHERE NOT ({ACTIVE_SQL} AND owner IS NULL)
                        AND leaderless_since IS NOT NULL)
FROM incidents
"""
VALID_SQL = """
SELECT (SELECT count(*) FROM pg_index WHERE indisvalid AND indexrelid::regclass::text IN
           ('ix_incidents_update_nudge_at', 'ix_incidents_leaderless_since')),
       (SELECT count(*) FROM pg_constraint WHERE convalidated AND conname IN
           ('ck_incident_events_event_kind', 'ck_deliveries_delivery_action')),
       (SELECT version_num FROM alembic_version)
"""


def seed(engine: Engine, count: int) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(text(SEED_SQL), {"count": count})
        connection.execute(text(OWNERLESS_SQL))
        connection.execute(text(EVENTS_SQL))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


@dataclass
class Sample:
    kind: str
    started: float  # perf_counter
    ms: float


@dataclass
class Writer:
    """The previous release's bot, as far as the database sees it."""

    engine: Engine
    samples: list[Sample] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(9)
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                # A bound, so that a statement stuck behind a lock ends the bench, not hangs it.
                cursor.execute("SET statement_timeout = '120s'")
                cursor.execute("SELECT max(id) FROM incidents")
                last = cursor.fetchone()[0]
                cursor.execute(f"SELECT id FROM incidents WHERE {ACTIVE_SQL}")
                active = [row[0] for row in cursor.fetchall()]
                raw.commit()
                while not self.done.is_set():
                    for kind, sql, params in (
                        ("update", UPDATE_SQL, {"id": rng.randint(1, last)}),
                        # What people work on, and what the backfill touches: half of them.
                        ("update_active", UPDATE_SQL, {"id": rng.choice(active)}),
                        ("insert", INSERT_SQL, {"id": rng.randint(1, last)}),
                        ("list", LIST_SQL, {"active": ACTIVE}),
                    ):
                        started = time.perf_counter()
                        try:
                            cursor.execute(sql, params)
                            if kind == "list":
                                cursor.fetchall()
                            raw.commit()
                        except Exception as error:  # a timeout: keep it, with its time
                            raw.rollback()
                            self.errors.append(f"{kind}: {error}".strip())
                        self.samples.append(
                            Sample(kind, started, (time.perf_counter() - started) * 1000)
                        )
                    self.done.wait(0.005)
        finally:
            raw.close()


@dataclass
class Wait:
    waiter: str
    lock: str
    blocker: str
    ms: float
    seen: float  # perf_counter


@dataclass
class Monitor:
    """Polls pg_stat_activity for lock waits; keeps the longest of each (waiter, lock, blocker)."""

    engine: Engine
    waits: dict[tuple[str, str, str], Wait] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            while not self.done.is_set():
                for row in connection.execute(text(WAITING_SQL)):
                    _, query, waited, locktype, relation, mode, _, state, blocked_by = row
                    key = (
                        short(query),
                        f"{mode} on {relation or locktype}",
                        f"{short(blocked_by)} ({state})",
                    )
                    ms = waited.total_seconds() * 1000
                    if key not in self.waits or self.waits[key].ms < ms:
                        self.waits[key] = Wait(*key, ms, time.perf_counter())
                self.done.wait(0.02)


def short(sql: str, width: int = 70) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def upgrade(engine: Engine, revision: str) -> float:
    """`alembic upgrade` on one connection outside a transaction, as db.migrate.upgrade runs it
    (migrations that build indexes CONCURRENTLY commit part way); its duration."""
    config = migrate.alembic_config()
    started = time.perf_counter()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
    return time.perf_counter() - started


def timed_upgrade(
    engine: Engine, target: str = TARGET
) -> tuple[float, list[tuple[float, float, str]]]:
    """`alembic upgrade <target>`, its duration and each of its statements (and commits) as
    (start, end, text) in perf_counter seconds."""
    steps: list[tuple[float, float, str]] = []
    pending: dict[int, tuple[float, str]] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        pending[id(cursor)] = (time.perf_counter(), statement)

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, cursor: Any, *_: Any) -> None:
        started, statement = pending.pop(id(cursor))
        steps.append((started, time.perf_counter(), statement))

    @event.listens_for(engine, "commit")
    def commit(conn: Any) -> None:
        steps.append((time.perf_counter(), time.perf_counter(), "COMMIT"))

    started = time.perf_counter()
    try:
        upgrade(engine, target)
    except Exception as error:  # a deadlock victim, say: the deploy would fail
        steps.append((time.perf_counter(), time.perf_counter(), f"FAILED: {error}"))
        print(f"  the upgrade FAILED: {short(str(error), 300)}", flush=True)
    return time.perf_counter() - started, steps


def stats(samples: list[Sample]) -> tuple[int, float, float, float]:
    timings = [s.ms for s in samples]
    if len(timings) < 2:
        return len(timings), float("nan"), float("nan"), max(timings, default=float("nan"))
    cuts = statistics.quantiles(timings, n=100)
    return len(timings), cuts[49], cuts[98], max(timings)


def during(steps: list[tuple[float, float, str]], sample: Sample) -> list[str]:
    """The migration's statements that ran while `sample` did."""
    end = sample.started + sample.ms / 1000
    return [short(s) for a, b, s in steps if a <= end and b >= sample.started]


def measure(before: str, target: str, check: Callable[[Engine], None]) -> None:
    """Seed at `before`, run the bot alone, then beside `alembic upgrade <target>`; report, and
    `check` what the upgrade left unless it failed (bench.migration_0010 runs the same)."""
    count = int(os.environ.get("BENCH_COUNT") or 1_000_000)
    baseline = float(os.environ.get("BENCH_BASELINE") or 10)
    with bench_database() as url:
        engine = make_engine(url)
        upgrade(engine, before)
        print(f"Seeding {count:,} incidents at revision {before} ...", flush=True)
        print(f"  seeded in {seed(engine, count):.1f} s", flush=True)

        writer, monitor = Writer(engine), Monitor(make_engine(url))
        threads = [threading.Thread(target=t.run, daemon=True) for t in (writer, monitor)]
        for thread in threads:
            thread.start()
        print(f"Phase A: the bot alone for {baseline:.0f} s ...", flush=True)
        a_start = time.perf_counter()
        time.sleep(baseline)
        b_start = time.perf_counter()
        print(f"Phase B: the bot while `alembic upgrade {target}` runs ...", flush=True)
        migration_engine = make_engine(url)
        took, steps = timed_upgrade(migration_engine, target)
        b_end = time.perf_counter()
        writer.done.set()
        monitor.done.set()
        for thread in threads:
            thread.join()

        phase_a = [s for s in writer.samples if a_start <= s.started < b_start]
        phase_b = [s for s in writer.samples if b_start <= s.started < b_end]
        report(took, phase_a, phase_b, steps, monitor, writer, b_start, (before, target))
        if not any(s.startswith("FAILED") for _, _, s in steps):
            check(engine)
        migration_engine.dispose()
        monitor.engine.dispose()
        engine.dispose()


def main() -> None:
    measure(BEFORE, TARGET, check)


def report(
    took: float,
    phase_a: list[Sample],
    phase_b: list[Sample],
    steps: list[tuple[float, float, str]],
    monitor: Monitor,
    writer: Writer,
    b_start: float,
    revisions: tuple[str, str] = (BEFORE, TARGET),
) -> None:
    print(f"\n  upgrade {revisions[0]} -> {revisions[1]} took {took:.1f} s")
    print(f"\n{'phase':24} {'statement':13} {'n':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>9}")
    for name, samples in (("A: bot alone", phase_a), ("B: bot during upgrade", phase_b)):
        for kind in ("update", "update_active", "insert", "list", "all"):
            picked = [s for s in samples if kind in ("all", s.kind)]
            n, p50, p99, top = stats(picked)
            print(f"{name:24} {kind:13} {n:7} {p50:8.2f} {p99:8.2f} {top:9.1f}")
    _, _, a99, a_max = stats(phase_a)
    _, _, b99, b_max = stats(phase_b)
    print(f"\n  ratio B/A: p99 {b99 / a99:.2f}x, max {b_max / a_max:.2f}x")

    slowest = sorted(phase_b, key=lambda s: s.ms, reverse=True)[:3]
    for rank, sample in enumerate(slowest):
        label = "longest single wait" if rank == 0 else "next"
        print(
            f"  {label}: {sample.kind} {sample.ms:.1f} ms at +{sample.started - b_start:.2f} s, "
            f"while the migration ran: {'; '.join(during(steps, sample)) or '(nothing of its)'}"
        )

    print("\n  the migration's statements taking 50 ms or more (from the start of phase B):")
    for started, ended, statement in steps:
        if (ended - started) * 1000 >= 50:
            print(
                f"    +{started - b_start:6.2f} s {(ended - started) * 1000:8.1f} ms  "
                f"{short(statement, 90)}"
            )
    print("\n  lock waits seen (longest of each; 20 ms polls, shorter waits are missed):")
    for wait in sorted(monitor.waits.values(), key=lambda w: w.ms, reverse=True)[:8]:
        print(
            f"    {wait.ms:8.1f} ms  {wait.waiter}\n"
            f"                 wants {wait.lock}\n"
            f"                 behind {wait.blocker}"
        )
    if not monitor.waits:
        print("    none")
    if writer.errors:
        print(f"\n  the bot's failed statements: {len(writer.errors)}, first: {writer.errors[0]}")
    failed = [s for _, _, s in steps if s.startswith("FAILED")]
    verdict = "PASS" if b_max < LIMIT_MS and not writer.errors and not failed else "FAIL"
    print(
        f"\n{verdict}: the bot's slowest statement during the upgrade took {b_max:.1f} ms "
        f"(limit {LIMIT_MS:.0f} ms)"
    )


def check(engine: Engine) -> None:
    with engine.connect() as connection:
        ownerless, backfilled, stray = connection.execute(text(CHECK_SQL)).one()
        indexes, constraints, version = connection.execute(text(VALID_SQL)).one()
        # The backfill's batch as 0009 writes it, planned now that it has nothing left to do.
        plan = connection.execute(text(f"EXPLAIN {BACKFILL_SQL}")).scalars().all()
    print("  the backfill batch's plan:\n" + "\n".join(f"    {line}" for line in plan))
    ok = ownerless > 0 and backfilled == ownerless and stray == 0
    ok = ok and indexes == 2 and constraints == 2 and version == TARGET
    print(
        f"{'OK' if ok else 'WRONG'}: backfill {backfilled:,} of {ownerless:,} active incidents "
        f"without an owner, {stray} others touched; {indexes}/2 new indexes valid, "
        f"{constraints}/2 CHECK constraints validated; alembic_version {version}"
    )


if __name__ == "__main__":
    main()

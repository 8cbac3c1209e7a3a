"""Benchmark: is migration 0010 safe on a large `incidents` table while the previous release runs?

    TEST_DATABASE_URL=... BENCH_COUNT=1000000 .venv/bin/python -m bench.migration_0010

The same run as bench.migration_0009 (whose seeding, stand-in bot, lock monitor and report it
uses), from revision 0009 to 0010: a throwaway database seeded with BENCH_COUNT incidents (a
million unless set), the bot alone for BENCH_BASELINE seconds (10), then the bot while
`alembic upgrade 0010` runs. PASS when none of the bot's statements took 1 s or more during the
upgrade. Then it checks that the three widened or new CHECK constraints are validated, that
every incident reads `review_status = 'draft'` (the column's default, with no table rewrite) and
that the new tables are there.
"""

from __future__ import annotations

import os
import threading
import time

from sqlalchemy import Engine, text

from bench import bench_database
from bench.migration_0009 import Monitor, Writer, report, seed, timed_upgrade, upgrade
from db.session import make_engine

BEFORE, TARGET = "0009", "0010"
CHECK_SQL = """
SELECT (SELECT count(*) FROM pg_constraint WHERE convalidated AND conname IN
           ('ck_incident_events_event_kind', 'ck_deliveries_delivery_action',
            'ck_incidents_review_status')),
       (SELECT count(*) FROM incidents WHERE review_status IS DISTINCT FROM 'draft'),
       (SELECT count(*) FROM incidents),
       (SELECT count(*) FROM pg_tables WHERE tablename IN ('followups', 'followup_digests')),
       (SELECT version_num FROM alembic_version)
"""


def check(engine: Engine) -> None:
    with engine.connect() as connection:
        constraints, not_draft, total, tables, version = connection.execute(text(CHECK_SQL)).one()
    ok = constraints == 3 and not_draft == 0 and tables == 2 and version == TARGET
    print(
        f"{'OK' if ok else 'WRONG'}: {constraints}/3 CHECK constraints validated; "
        f"{total - not_draft:,} of {total:,} incidents in review draft; {tables}/2 new tables; "
        f"alembic_version {version}"
    )


def main() -> None:
    count = int(os.environ.get("BENCH_COUNT") or 1_000_000)
    baseline = float(os.environ.get("BENCH_BASELINE") or 10)
    with bench_database() as url:
        engine = make_engine(url)
        upgrade(engine, BEFORE)
        print(f"Seeding {count:,} incidents at revision {BEFORE} ...", flush=True)
        print(f"  seeded in {seed(engine, count):.1f} s", flush=True)
        writer, monitor = Writer(engine), Monitor(make_engine(url))
        threads = [threading.Thread(target=t.run, daemon=True) for t in (writer, monitor)]
        for thread in threads:
            thread.start()
        print(f"Phase A: the bot alone for {baseline:.0f} s ...", flush=True)
        a_start = time.perf_counter()
        time.sleep(baseline)
        b_start = time.perf_counter()
        print(f"Phase B: the bot while `alembic upgrade {TARGET}` runs ...", flush=True)
        migration_engine = make_engine(url)
        took, steps = timed_upgrade(migration_engine, TARGET)
        b_end = time.perf_counter()
        writer.done.set()
        monitor.done.set()
        for thread in threads:
            thread.join()
        phase_a = [s for s in writer.samples if a_start <= s.started < b_start]
        phase_b = [s for s in writer.samples if b_start <= s.started < b_end]
        report(took, phase_a, phase_b, steps, monitor, writer, b_start, (BEFORE, TARGET))
        if not any(s.startswith("FAILED") for _, _, s in steps):
            check(engine)
        migration_engine.dispose()
        monitor.engine.dispose()
        engine.dispose()


if __name__ == "__main__":
    main()

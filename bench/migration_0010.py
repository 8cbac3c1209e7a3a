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

from sqlalchemy import Engine, text

from bench.migration_0009 import measure

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
    measure(BEFORE, TARGET, check)


if __name__ == "__main__":
    main()

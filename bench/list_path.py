"""The list path in-process: the bot's `/incident list active` beside hand-written SQL.

The bot: the domain's list_incidents (the page with its total counted 200 past its start) and
the Block Kit rendering, serialised as it is sent. The floor: the same statement hand-written on
the raw psycopg2 connection, and blocks built once beforehand, serialised the same way.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from bench.incidents import page_sql
from bot import incidents
from bot.slack import blocks, grammar

# The bot's statement for `list active`, written by hand (bench.incidents.page_sql, the benches'
# one): one round trip, the matches read in order as far as the count goes. Plan on 1,000
# incidents: Limit -> Sort (n) -> CTE Scan on ahead; CTE ahead: Limit 201 -> WindowAgg ->
# Index Scan Backward using ix_incidents_active_created_id.
PAGE_SQL = page_sql("status = ANY(%(active)s)", "created_at DESC, id DESC")
ACTIVE = {"active": ["open", "investigating", "mitigated"]}


def p50s(jobs: list[Callable[[], object]], runs: int = 300) -> list[float]:
    """p50 ms of each job, run in turn so that the machine's drift touches all alike."""
    times: list[list[float]] = [[] for _ in jobs]
    for number in range(runs + 30):
        for job, spent in zip(jobs, times, strict=True):
            started = time.perf_counter()
            job()
            if number >= 30:  # warm-up
                spent.append((time.perf_counter() - started) * 1000)
    return [statistics.median(spent) for spent in times]


def compare(engine: Engine) -> tuple[float, float]:
    """p50 ms of the bot's list path and of the hand-written floor."""
    sessions = sessionmaker(engine, expire_on_commit=False)
    query = grammar.parse_list_filters("active", "U0BENCH01")

    def bot() -> str:
        with sessions() as session:
            page = incidents.list_incidents(session, query)
            rendered = blocks.incident_list(page, "active")
        return json.dumps(rendered)

    with sessions() as session:
        prebuilt = blocks.incident_list(incidents.list_incidents(session, query), "active")

    def floor() -> str:
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute(PAGE_SQL, ACTIVE)
                cursor.fetchall()
        finally:
            raw.close()
        return json.dumps(prebuilt)

    ours, theirs = p50s([bot, floor])
    return ours, theirs

"""The list path in-process: the bot's `/incident list active` beside hand-written SQL.

The bot: the domain's list_incidents (the page with its count capped at 1,000) and the Block Kit
rendering, serialised as it is sent. The floor: the same statement hand-written on the raw
psycopg2 connection, and blocks built once beforehand, serialised the same way.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from bot import incidents
from bot.slack import blocks, grammar

# The bot's statement for `list active`, written by hand: one round trip, the capped count as an
# InitPlan. Plan on 1,000 incidents: Limit -> Sort (created_at DESC, id DESC) -> Seq Scan on
# incidents, Filter: status = ANY(active); InitPlan 1: Aggregate -> Limit 1001 -> Seq Scan with the
# same filter.
PAGE_SQL = (
    "SELECT id, title, severity, status, service, owner, assignee, created_at, updated_at, "
    "own_channel_id, "
    "(SELECT count(*) FROM (SELECT 1 FROM incidents WHERE status = ANY(%(active)s) "
    "LIMIT 1001) AS capped) FROM incidents WHERE status = ANY(%(active)s) "
    "ORDER BY created_at DESC, id DESC LIMIT 21 OFFSET 0"
)
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

"""Every Prometheus metric the bot exposes on `GET /metrics`, defined here and nowhere else.

They live in prometheus_client's default registry. One process is one replica, so the
process-wide registry is exactly what Prometheus should see of it; the outbox, the scheduler and
Bolt count into it where things happen, without a registry handed down through their
constructors; and it carries the client's own process and Python metrics (memory, CPU, open
files, garbage collection) for free.

Labels stay bounded: surfaces, kinds, outcomes, Slack methods and error codes, job names and
severities; never a person, a channel, an incident or free text.

What is a state rather than an event is read at scrape time by `BotState`, which `watch()`
registers for the bot's engine and work queue: the pool and the queue from memory, the outbox,
active incidents, late promised updates and readiness from one short transaction. A database
that does not answer leaves those out (and `incident_bot_ready` at 0); the rest of the scrape
still answers.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol

import prometheus_client
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from bot import incidents
from bot.work import WorkQueue
from db import readiness
from db.models import Delivery, Severity
from db.session import bounded_transaction

log = logging.getLogger(__name__)

# A `_created` series beside every counter and histogram would double the scrape for a value
# no alert uses.
prometheus_client.disable_created_metrics()

# --- Slack's requests ----------------------------------------------------------------------------

ACK_SECONDS = Histogram(
    "incident_bot_ack_seconds",
    "Time from a Slack request reaching Bolt to its ack leaving Bolt (the listener has saved "
    "the change and returned the response).",
    ["mode", "kind", "outcome"],
    # Slack gives up after 3 s; the ack p99 alert is at 1 s.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5),
)

# --- the outbox ----------------------------------------------------------------------------------

SLACK_SENDS = Counter(
    "incident_bot_slack_sends_total",
    "The outbox's Slack calls, by method and result (ok, error, rate_limited, unknown: the call "
    "may have reached Slack).",
    ["method", "result"],
)
SLACK_FAILURES = Counter(
    "incident_bot_slack_failures_total",
    "The outbox's Slack calls that did not succeed, by Slack's error code ('other' for "
    "anything that is not a plain code, such as a dropped connection).",
    ["error"],
)
DUPLICATES_AVOIDED = Counter(
    "incident_bot_outbox_duplicates_avoided_total",
    "Posts whose outcome was unknown, found in Slack by their metadata tag and recorded "
    "instead of being posted again.",
)
# Slack's codes (`not_in_channel`, `ratelimited`, `http_503`); anything else would be unbounded.
_SLACK_CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")

# --- the scheduler -------------------------------------------------------------------------------

SCHEDULER_LEADER = Gauge(
    "incident_bot_scheduler_leader",
    "1 while this replica holds the scheduler's advisory lock and runs the jobs, else 0.",
)
JOB_LAST_RUN = Gauge(
    "incident_bot_job_last_run_timestamp_seconds",
    "When each job's last run ended (Unix time), whether it succeeded or not.",
    ["job"],
)
JOB_LAST_DURATION = Gauge(
    "incident_bot_job_last_duration_seconds", "How long each job's last run took.", ["job"]
)
JOB_FAILURES = Counter(
    "incident_bot_job_failures_total", "Job runs that ended in an error.", ["job"]
)

# --- the database --------------------------------------------------------------------------------

DB_FAILED_QUERIES = Counter(
    "incident_bot_db_failed_queries_total",
    "Statements and connection attempts on the bot's engine that failed (unreachable, "
    "timeouts, lock timeouts answered 'busy', errors).",
)
# A scrape waits this long at most for a statement, however busy or locked the tables are.
SCRAPE_STATEMENT_TIMEOUT = "2s"


class SendOutcome(Protocol):
    """What the outbox learnt from one Slack call (bot.delivery.outbox's outcome)."""

    error: str | None
    rate_limited: bool
    unknown: bool
    found: bool
    wait_until: datetime | None


def count_send(method: str, outcome: SendOutcome) -> None:
    """Count one outbox call by its result, and a failure by Slack's error code."""
    if outcome.wait_until is not None and outcome.error is None:
        return  # too soon to look for an earlier post: no call was made
    if outcome.error is None:
        SLACK_SENDS.labels(method=method, result="ok").inc()
        if outcome.found:
            DUPLICATES_AVOIDED.inc()
        return
    result = "rate_limited" if outcome.rate_limited else "unknown" if outcome.unknown else "error"
    SLACK_SENDS.labels(method=method, result=result).inc()
    SLACK_FAILURES.labels(error=error_label(outcome.error)).inc()


def error_label(code: str) -> str:
    """Slack's error code when it is a plain one, else "other"."""
    return code if _SLACK_CODE.fullmatch(code) else "other"


@contextmanager
def job_run(job: str) -> Iterator[None]:
    """Time one run of a scheduler job: when it ended, how long it took, whether it failed."""
    failures = JOB_FAILURES.labels(job=job)  # shown at 0 from the first run, for rate()
    started = time.monotonic()
    try:
        yield
    except Exception:
        failures.inc()
        raise
    finally:
        JOB_LAST_DURATION.labels(job=job).set(time.monotonic() - started)
        JOB_LAST_RUN.labels(job=job).set_to_current_time()


# --- read at scrape time -------------------------------------------------------------------------

_OUTBOX = select(
    func.count(),
    func.coalesce(func.extract("epoch", func.now() - func.min(Delivery.created_at)), 0),
).where(Delivery.delivered_at.is_(None), Delivery.failed_at.is_(None))


class BotState(Collector):
    """The gauges read when Prometheus scrapes: the engine's pool, the work queue, the outbox's
    backlog, active incidents by severity, late promised updates, readiness."""

    def __init__(self, engine: Engine, work: WorkQueue | None) -> None:
        self.engine = engine
        self.work = work
        self.sessions = sessionmaker(engine)

    def describe(self) -> Iterator[Metric]:
        # Names only: registering must not query the database.
        return self._families(ready=False, outbox=None, active=None, overdue=None)

    def collect(self) -> Iterator[Metric]:
        ready = False
        outbox: tuple[int, float] | None = None
        active: dict[Severity, int] | None = None
        overdue: int | None = None
        try:
            with bounded_transaction(
                self.sessions, lock_timeout="1s", statement_timeout=SCRAPE_STATEMENT_TIMEOUT
            ) as session:
                ready = readiness.schema_problem(session.connection()) is None
                waiting, oldest = session.execute(_OUTBOX).one()
                outbox = (waiting, float(oldest))
                active = incidents.active_by_severity(session)
                overdue = incidents.count_overdue(session)
        except SQLAlchemyError as error:  # counted by the engine's handle_error event
            log.warning(
                "metrics: the database did not answer the scrape (%s)", type(error).__name__
            )
        return self._families(ready, outbox, active, overdue)

    def _families(
        self,
        ready: bool,
        outbox: tuple[int, float] | None,
        active: dict[Severity, int] | None,
        overdue: int | None,
    ) -> Iterator[Metric]:
        pool = self.engine.pool
        if isinstance(pool, QueuePool):
            yield GaugeMetricFamily(
                "incident_bot_db_pool_checked_out",
                "Connections of the bot's pool in use now.",
                value=pool.checkedout(),
            )
            yield GaugeMetricFamily(
                "incident_bot_db_pool_size",
                "Connections the bot's pool keeps open (up to 10 more open under load).",
                value=pool.size(),
            )
        if self.work is not None:
            yield GaugeMetricFamily(
                "incident_bot_work_queue_depth",
                "Work that follows acks waiting for a worker (past WORK_QUEUE_LIMIT the ack "
                "says the bot is busy).",
                value=self.work.depth(),
            )
        yield GaugeMetricFamily(
            "incident_bot_ready",
            "1 when the database answers and its schema is at the latest migration "
            "(as /readyz), else 0.",
            value=1 if ready else 0,
        )
        waiting = GaugeMetricFamily(
            "incident_bot_outbox_waiting", "Outbox rows neither sent nor given up on."
        )
        oldest = GaugeMetricFamily(
            "incident_bot_outbox_oldest_waiting_seconds",
            "Age of the oldest outbox row neither sent nor given up on; 0 when none waits.",
        )
        if outbox is not None:
            waiting.add_metric([], outbox[0])
            oldest.add_metric([], outbox[1])
        yield waiting
        yield oldest
        by_severity = GaugeMetricFamily(
            "incident_bot_incidents_active",
            "Active incidents (open, investigating, mitigated) by severity.",
            labels=["severity"],
        )
        for severity, count in (active or {}).items():
            by_severity.add_metric([severity.value], count)
        yield by_severity
        late = GaugeMetricFamily(
            "incident_bot_updates_overdue",
            "Active incidents whose promised next update is due and has not come.",
        )
        if overdue is not None:
            late.add_metric([], overdue)
        yield late

    def close(self) -> None:
        """Stop reporting this bot (tests start several in one process, one after another)."""
        REGISTRY.unregister(self)
        event.remove(self.engine, "handle_error", _count_failed_query)


def _count_failed_query(context: Any) -> None:
    DB_FAILED_QUERIES.inc()


def watch(engine: Engine, work: WorkQueue | None = None) -> BotState:
    """Report this bot's engine (its pool, its failed queries, the database behind it) and work
    queue, if it has one (not without Slack), on /metrics."""
    state = BotState(engine, work)
    event.listen(engine, "handle_error", _count_failed_query)
    REGISTRY.register(state)
    return state

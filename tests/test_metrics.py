"""`GET /metrics` and `GET /readyz` over real HTTP, from a running bot: the values move when
Slack's requests are acked, when the fake Slack fails posts, when the leader changes, and when
the database is behind or gone; and no label ever names a person, a channel or an incident."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta

from alembic import command
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents, metrics
from bot.incidents import Actor, IncidentDraft
from bot.server import make_wsgi_app
from bot.slack import ids
from db import migrate
from db.models import Delivery
from db.session import make_engine
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import Bot, bot_settings, running_bot, serve_wsgi
from tests.steps import FIXED
from tests.test_replicas import BotProcess, bots, wait_for
from tests.test_slack_interactions import STATUS_BUTTON, click, declare
from tests.test_web import fetch as web_fetch

USER = defaults.USER_ID
CHANNEL = defaults.CHANNEL_ID
ALICE = Actor("U0ALICE0001")
LATER = timedelta(hours=1)  # a drain this far ahead finds every back-off over
# Label values that name a person, a channel (or a DM, a group, a team) or an incident.
SLACK_ID = re.compile(r"\b[UWCDGT][A-Z0-9]{6,}\b")
INCIDENT_REF = re.compile(r"INC-\d+", re.IGNORECASE)
# Slack Web API methods, and the outbox's answers to a request's response_url.
METHOD_NAME = re.compile(r"[a-z]+\.[a-zA-Z]+")
KINDS = {"command", "action", "view", "shortcut", "options", "event"}
RESULTS = {"ok", "error", "rate_limited", "unknown"}
SEVERITIES = {"SEV1", "SEV2", "SEV3", "SEV4"}
JOBS = {
    "reminders",
    "update-nudges",
    "lead-reminders",
    "auto-close",
    "digest",
    "followup-digest",
    "forget-events",
    "archive-channels",
    "ticket-poll",
}


def fetch(url: str, method: str = "GET") -> tuple[int, str]:
    return web_fetch(url, method, timeout=10)  # a scrape may wait 2 s on a busy database


class Scrape:
    """One `GET /metrics`, parsed by prometheus_client's own parser."""

    def __init__(self, base_url: str) -> None:
        status, body = fetch(f"{base_url}/metrics")
        assert status == 200, body
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(body)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels; 0 when there is none (a counter not yet
        counted)."""
        found = [v for n, la, v in self.samples if n == name and la == labels]
        assert len(found) <= 1
        return found[0] if found else 0.0

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(la.items())): v for n, la, v in self.samples if n == name}

    def moved(self, before: Scrape, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """How each series of `name` moved since `before` (only those that did)."""
        old = before.series(name)
        return {k: v - old.get(k, 0.0) for k, v in self.series(name).items() if v != old.get(k)}


def labels_bounded(scrape: Scrape, *forbidden: str) -> None:
    """No label value in the whole scrape names a person, a channel or an incident, and each of
    our labels stays inside its vocabulary."""
    vocabulary: dict[str, Callable[[str], bool]] = {
        "mode": {"socket", "http"}.__contains__,
        "kind": KINDS.__contains__,
        "outcome": {"ok", "error"}.__contains__,
        "result": RESULTS.__contains__,
        "method": lambda value: value == "response_url" or bool(METHOD_NAME.fullmatch(value)),
        "error": re.compile(r"[a-z][a-z0-9_]{0,39}").fullmatch,
        "severity": SEVERITIES.__contains__,
        "job": JOBS.__contains__,
        "le": lambda value: value == "+Inf" or float(value) > 0,
    }
    for name, labels, _ in scrape.samples:
        for label, value in labels.items():
            assert not SLACK_ID.search(value), (name, label, value)
            assert not INCIDENT_REF.search(value), (name, label, value)
            assert all(word not in value for word in forbidden), (name, label, value)
            if name.startswith("incident_bot_"):
                assert vocabulary[label](value), (name, label, value)


def declare_directly(sessions: sessionmaker[Session], severity: str = "SEV3") -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout is failing", severity=severity, slack_channel_id=CHANNEL
        )
        return incidents.declare(session, draft, ALICE).id


def waiting_rows(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).where(
                Delivery.delivered_at.is_(None), Delivery.failed_at.is_(None)
            )
        )


# --- (a) acks ------------------------------------------------------------------------------------


def test_each_ack_is_timed_by_surface_kind_and_outcome(slackbot: Bot):
    before = Scrape(slackbot.base_url)
    assert slackbot.command("help")[0] == 200
    incident_id = declare(slackbot)  # the /incident command, then the form's submission
    click(slackbot, incident_id, STATUS_BUTTON + "investigating")
    for payload in (
        payloads.global_shortcut(ids.DECLARE_SHORTCUT, fake=slackbot.fake),
        payloads.block_suggestion(ids.INCIDENT_PICKER, "checkout"),
        payloads.event_callback(payloads.app_home_opened_event(USER)),
    ):
        assert slackbot.post(payload)[0] == 200
    after = Scrape(slackbot.base_url)

    counted = {
        dict(labels)["kind"]: (dict(labels)["mode"], dict(labels)["outcome"], moved)
        for labels, moved in after.moved(before, "incident_bot_ack_seconds_count").items()
    }
    assert counted == {
        "command": ("http", "ok", 2),
        "view": ("http", "ok", 1),
        "action": ("http", "ok", 1),
        "shortcut": ("http", "ok", 1),
        "options": ("http", "ok", 1),
        "event": ("http", "ok", 1),
    }
    command = {"mode": "http", "kind": "command", "outcome": "ok"}
    assert after.value("incident_bot_ack_seconds_sum", **command) > before.value(
        "incident_bot_ack_seconds_sum", **command
    )
    # Every ack of this run was under Slack's 3 s: the 3 s bucket moved with the count.
    moved_under_3s = after.value("incident_bot_ack_seconds_bucket", **command, le="3.0") - (
        before.value("incident_bot_ack_seconds_bucket", **command, le="3.0")
    )
    assert moved_under_3s == 2
    labels_bounded(after, USER, CHANNEL, f"INC-{incident_id}")


# --- (b) a failing Slack -------------------------------------------------------------------------


def test_slack_refusing_posts_moves_sends_failures_and_the_outbox(slackbot: Bot):
    fake, sessions = slackbot.fake, slackbot.sessions
    post = {"method": "chat.postMessage"}
    before = Scrape(slackbot.base_url)
    assert before.value("incident_bot_outbox_waiting") == 0
    assert before.value("incident_bot_outbox_oldest_waiting_seconds") == 0

    # A post Slack made but whose answer was lost is found by its tag, not posted again.
    lost = declare_directly(sessions)
    fake.drop_after("chat.postMessage")
    t0 = datetime.now(UTC)
    slackbot.deliverer.drain(incident_id=lost, now=t0)
    slackbot.deliverer.drain(incident_id=lost, now=t0 + LATER)
    found = Scrape(slackbot.base_url)
    assert found.moved(before, "incident_bot_outbox_duplicates_avoided_total") == {(): 1}
    assert found.moved(before, "incident_bot_slack_sends_total") == {
        (("method", "chat.postMessage"), ("result", "unknown")): 1,  # the answer never came
        (("method", "chat.postMessage"), ("result", "ok")): 1,  # found, recorded
    }
    assert found.moved(before, "incident_bot_slack_failures_total") == {(("error", "other"),): 1}

    # Slack refuses the next card four ways; it waits in the outbox, queued ten minutes ago.
    refused = declare_directly(sessions)
    with sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.incident_id == refused)
            .values(created_at=func.now() - timedelta(minutes=10))
        )
    fake.fail("chat.postMessage", error="internal_error")  # ok:false
    fake.fail("chat.postMessage", error="ratelimited")  # HTTP 429
    fake.fail("chat.postMessage", error=f"no such channel {CHANNEL}")  # not a plain code
    fake.fail("chat.postMessage", status=503)  # may have been posted: unknown
    t1 = t0 + 2 * LATER
    for attempt in range(4):
        slackbot.deliverer.drain(incident_id=refused, now=t1 + attempt * LATER)
    failing = Scrape(slackbot.base_url)
    assert failing.value("incident_bot_outbox_waiting") == waiting_rows(sessions) >= 1
    assert 600 <= failing.value("incident_bot_outbox_oldest_waiting_seconds") < 700
    assert failing.moved(found, "incident_bot_slack_sends_total") == {
        (("method", "chat.postMessage"), ("result", "error")): 2,
        (("method", "chat.postMessage"), ("result", "rate_limited")): 1,
        (("method", "chat.postMessage"), ("result", "unknown")): 1,
    }
    assert failing.moved(found, "incident_bot_slack_failures_total") == {
        (("error", "internal_error"),): 2,
        (("error", "ratelimited"),): 1,
        (("error", "other"),): 1,
    }

    # Slack answers again: the card goes out (looked for first, after the 503) and nothing waits.
    slackbot.deliverer.drain(incident_id=refused, now=t1 + 5 * LATER)
    sent = Scrape(slackbot.base_url)
    assert sent.moved(failing, "incident_bot_slack_sends_total") == {
        (("method", "chat.postMessage"), ("result", "ok")): 1
    }
    assert sent.value("incident_bot_outbox_waiting") == waiting_rows(sessions) == 0
    assert sent.value("incident_bot_outbox_oldest_waiting_seconds") == 0
    assert not sent.moved(failing, "incident_bot_outbox_duplicates_avoided_total")
    assert sent.value("incident_bot_slack_sends_total", **post, result="ok") >= 2
    labels_bounded(sent, USER, CHANNEL, f"INC-{lost}", f"INC-{refused}")


# --- scrape-time state ---------------------------------------------------------------------------


def test_state_is_read_when_prometheus_scrapes(slackbot: Bot, engine: Engine):
    for severity in ("SEV1", "SEV3", "SEV3"):
        declare_directly(slackbot.sessions, severity)
    closed = declare_directly(slackbot.sessions, "SEV2")
    with slackbot.sessions.begin() as session:
        incidents.change_status(session, closed, "closed", ALICE, resolution=FIXED)
    scrape = Scrape(slackbot.base_url)
    assert scrape.series("incident_bot_incidents_active") == {
        (("severity", "SEV1"),): 1,
        (("severity", "SEV2"),): 0,
        (("severity", "SEV3"),): 2,
        (("severity", "SEV4"),): 0,
    }
    # Each declaration's card, and the closed one's edit and thread reply.
    assert scrape.value("incident_bot_outbox_waiting") == waiting_rows(slackbot.sessions) >= 4
    assert scrape.value("incident_bot_ready") == 1
    assert scrape.value("incident_bot_db_pool_size") == 10
    with engine.connect():  # one more connection in use while Prometheus looks
        busier = Scrape(slackbot.base_url)
    checked_out = "incident_bot_db_pool_checked_out"
    assert busier.value(checked_out) == scrape.value(checked_out) + 1
    assert scrape.value("incident_bot_work_queue_depth") == 0
    assert scrape.value("incident_bot_scheduler_leader") == 0  # no scheduler in this bot


def test_updates_overdue_counts_the_active_incidents_whose_promised_update_is_late(slackbot: Bot):
    late, kept, finished, withdrawn = (declare_directly(slackbot.sessions) for _ in range(4))
    assert Scrape(slackbot.base_url).value("incident_bot_updates_overdue") == 0
    now = datetime.now(UTC)
    promise = incidents.UpdateDraft("Rolling back.", next_update_in=timedelta(minutes=15))
    with slackbot.sessions.begin() as session:
        for number in (late, finished, withdrawn):
            incidents.post_update(session, number, promise, ALICE, now=now - LATER)
        incidents.post_update(session, kept, promise, ALICE, now=now)
        incidents.change_status(session, finished, "resolved", ALICE, resolution=FIXED)
        incidents.post_update(session, withdrawn, incidents.UpdateDraft("No news."), ALICE)
    assert Scrape(slackbot.base_url).value("incident_bot_updates_overdue") == 1


# --- (c) the scheduler's leader, in both modes ---------------------------------------------------


def leader_gauge(process: BotProcess) -> float:
    return Scrape(process.base_url).value("incident_bot_scheduler_leader")


def test_the_leader_gauge_follows_the_advisory_lock_across_replicas(
    database_url: str, committing_sessions: sessionmaker[Session]
):
    """Two replicas on one database, one in HTTP mode and one in Socket Mode (which serves
    /metrics on its PORT too): one leads; stopped, the other takes over and says so."""
    with FakeSlack(socket_mode=True) as fake:
        env = {"DATABASE_URL": database_url, "SLACK_API_URL": fake.api_url}
        http = BotProcess(**env)
        socket = BotProcess(
            **env,
            SLACK_APP_TOKEN=defaults.APP_TOKEN,
            SLACK_SIGNING_SECRET="",
            # The Socket Mode client ignores NO_PROXY.
            HTTPS_PROXY="",
            HTTP_PROXY="",
        )
        with bots(http, socket):
            http.wait_healthy()
            socket.wait_healthy()
            fake.socket_mode.wait_connected(timeout=30)
            envelope = fake.socket_mode.send_envelope(
                None, payloads.slash_command("/incident", "help", fake=fake)
            )
            fake.socket_mode.wait_ack(envelope, timeout=10)
            acks = Scrape(socket.base_url).series("incident_bot_ack_seconds_count")
            assert acks == {(("kind", "command"), ("mode", "socket"), ("outcome", "ok")): 1}

            wait_for(lambda: leader_gauge(http) + leader_gauge(socket) == 1, 20, "one leader")
            leader, follower = (http, socket) if leader_gauge(http) == 1 else (socket, http)
            assert Scrape(leader.base_url).series("incident_bot_job_failures_total")
            assert leader_gauge(follower) == 0
            assert not Scrape(follower.base_url).has("incident_bot_job_last_run_timestamp_seconds")

            leader.stop()  # SIGTERM: the lock goes with its connection
            wait_for(lambda: leader_gauge(follower) == 1, 20, "the follower to take over")

            def jobs_ran() -> dict[str, float]:
                scrape = Scrape(follower.base_url)
                return {
                    dict(labels)["job"]: value
                    for labels, value in scrape.series(
                        "incident_bot_job_last_run_timestamp_seconds"
                    ).items()
                }

            wait_for(lambda: set(jobs_ran()) == JOBS, 20, "every job to run on the new leader")
            assert all(abs(ran - time.time()) < 60 for ran in jobs_ran().values())
            scrape = Scrape(follower.base_url)
            assert all(scrape.value("incident_bot_job_failures_total", job=j) == 0 for j in JOBS)
            assert scrape.value("incident_bot_job_last_duration_seconds", job="reminders") >= 0
            labels_bounded(scrape, USER, CHANNEL)


# --- (d) readiness -------------------------------------------------------------------------------


def test_readyz_is_ready_at_the_latest_migration(slackbot: Bot):
    assert fetch(f"{slackbot.base_url}/readyz") == (200, "ready\n")
    assert fetch(f"{slackbot.base_url}/readyz", method="HEAD")[0] == 200
    assert fetch(f"{slackbot.base_url}/healthz") == (200, "ok\n")
    assert fetch(f"{slackbot.base_url}/metrics", method="POST")[0] == 404  # GET only


@contextmanager
def database_at(database_url: str, revision: str) -> Iterator[Engine]:
    """A new database on the tests' server, migrated only as far as `revision`."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    name = f"incident_behind_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(database_url).set(database=name).render_as_string(False))
    try:
        config = migrate.alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
            connection.commit()
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_readyz_is_503_while_the_schema_is_behind(database_url: str, fake_slack: FakeSlack):
    scripts = ScriptDirectory.from_config(migrate.alembic_config())
    head = scripts.get_current_head()
    previous = scripts.get_revision(head).down_revision
    settings = bot_settings(fake_slack)
    with (
        database_at(database_url, previous) as engine,
        closing(metrics.watch(engine)),
        serve_wsgi(make_wsgi_app(None, engine, settings), settings) as base_url,
    ):
        assert fetch(f"{base_url}/readyz") == (
            503,
            f"schema at {previous}, latest is {head}: run `python -m bot migrate`\n",
        )
        assert fetch(f"{base_url}/healthz") == (200, "ok\n")  # alive all the same
        scrape = Scrape(base_url)
        assert scrape.value("incident_bot_ready") == 0
        # What the older schema can answer is still reported.
        assert scrape.value("incident_bot_outbox_waiting") == 0
        assert set(scrape.series("incident_bot_incidents_active").values()) == {0}


def test_readyz_is_503_and_metrics_still_answer_when_the_database_is_gone(
    fake_slack: FakeSlack,
):
    unreachable = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    with running_bot(fake_slack, unreachable, sessionmaker(unreachable)) as bot:
        first = Scrape(bot.base_url)
        assert fetch(f"{bot.base_url}/readyz") == (503, "database unreachable\n")
        # The listener reads the database before its ack, and fails: Slack is answered 500.
        assert bot.command("note the database is gone")[0] == 500
        scrape = Scrape(bot.base_url)
        assert scrape.value("incident_bot_ready") == 0
        assert scrape.value("incident_bot_db_failed_queries_total") > first.value(
            "incident_bot_db_failed_queries_total"
        )
        error = {"mode": "http", "kind": "command", "outcome": "error"}
        assert scrape.value("incident_bot_ack_seconds_count", **error) == (
            first.value("incident_bot_ack_seconds_count", **error) + 1
        )
        # Reported without the database: the pool and the work queue; not what needs it.
        assert scrape.value("incident_bot_db_pool_size") == 10
        assert scrape.has("incident_bot_work_queue_depth")
        assert not scrape.has("incident_bot_outbox_waiting")
        assert not scrape.has("incident_bot_incidents_active")
        labels_bounded(scrape, USER, CHANNEL)
    unreachable.dispose()

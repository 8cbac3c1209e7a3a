"""The scheduler's sweeps on a controlled clock: reminders, auto-close, the digest, retries.

Every sweep of `Jobs` takes `now`, so these tests inject time instead of waiting for it. The
controlled clock is set in the future (2031): outbox rows are stamped `next_attempt_at` by the
database's clock when they are written, and a sweep only sends rows due at its `now`.

What the issue promises is written out here (cadences, quiet hours, digest time) rather than read
back from the code under test, and Slack is the loopback fake with its fault injection.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, IncidentDraft
from bot.scheduler import Jobs
from bot.settings import Settings
from bot.slack.app import make_client
from db.models import (
    Delivery,
    DeliveryAction,
    Digest,
    EventKind,
    Incident,
    IncidentEvent,
    ProcessedEvent,
    Status,
)
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import ADMIN_ID, Bot, bot_settings
from tests.steps import resolution

Sessions = sessionmaker[Session]
T = TypeVar("T")

CHANNEL = defaults.CHANNEL_ID
DIGEST_CHANNEL = "C0DIGEST001"
REPORTER = Actor("U0REPORT001")
OWNER = "U0OWNER0001"
CLICKER = defaults.USER_ID
# A Wednesday in January: no DST change anywhere near it.
BASE = datetime(2031, 1, 15, 12, 0, tzinfo=UTC)
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
# The defaults: SEV1 15 min, SEV2 30 min, SEV3 4 h, SEV4 none.
DEFAULT_CADENCES = {
    "SEV1": timedelta(minutes=15),
    "SEV2": timedelta(minutes=30),
    "SEV3": timedelta(hours=4),
    "SEV4": None,
}
SECOND = timedelta(seconds=1)
REMINDER_TEXT = "no update for"  # what a reminder says; a snooze or a change does not


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_digests_or_event_ids(engine: Engine):
    """`committing_sessions` empties the incident tables only; these two must start empty too."""

    def clear() -> None:
        with engine.begin() as connection:
            connection.execute(delete(Digest))
            connection.execute(delete(ProcessedEvent))

    clear()
    yield
    clear()


def make_jobs(fake: FakeSlack, sessions: Sessions, *, retrying: bool = True, **settings: Any):
    """A scheduler's sweeps as a process builds them: settings, a client, a deliverer."""
    config = bot_settings(fake, **settings)
    client = make_client(config) if retrying else fake.client()
    return Jobs(config, sessions, Deliverer(sessions, client))


def declare(
    sessions: Sessions,
    severity: str,
    at: datetime,
    *,
    owner: str | None = None,
    channel: str | None = CHANNEL,
    title: str | None = None,
) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title=title or f"{severity} checkout errors",
            severity=severity,
            owner=owner,
            slack_channel_id=channel,
        )
        return incidents.declare(session, draft, REPORTER, now=at).id


def set_status(
    sessions: Sessions, incident_id: int, status: str, at: datetime, note: str | None = None
) -> None:
    with sessions.begin() as session:
        incidents.change_status(
            session, incident_id, status, REPORTER, note=note, now=at, resolution=resolution(status)
        )


def set_severity(sessions: Sessions, incident_id: int, severity: str, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.change_severity(session, incident_id, severity, REPORTER, now=at)


def add_note(sessions: Sessions, incident_id: int, text: str, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.add_note(session, incident_id, REPORTER, text, now=at)


def row(sessions: Sessions, incident_id: int) -> Incident:
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident


def events(sessions: Sessions, incident_id: int, kind: EventKind | None = None) -> list:
    with sessions() as session:
        query = (
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
        if kind is not None:
            query = query.where(IncidentEvent.kind == kind)
        return list(session.scalars(query))


def deliveries(sessions: Sessions) -> list[Delivery]:
    with sessions() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def pending(sessions: Sessions) -> list[Delivery]:
    return [d for d in deliveries(sessions) if d.delivered_at is None and d.failed_at is None]


def with_card(jobs: Jobs, sessions: Sessions, severity: str, at: datetime, **kwargs: Any):
    """An incident declared at `at` whose card is in Slack; returns its id and the card's ts."""
    incident_id = declare(sessions, severity, at, **kwargs)
    jobs.deliverer.drain(now=at)
    ts = row(sessions, incident_id).card_ts
    assert ts is not None, "the card must be posted before the test starts"
    return incident_id, ts


def cards(fake: FakeSlack, channel: str = CHANNEL) -> list[dict[str, Any]]:
    """The bot's top-level messages (broadcast thread replies left out)."""
    return [
        m
        for m in fake.messages(channel)
        if m.get("user") == fake.bot_user_id and m.get("subtype") != "thread_broadcast"
    ]


def reminders(fake: FakeSlack, ts: str) -> list[dict[str, Any]]:
    return [m for m in fake.thread(CHANNEL, ts) if REMINDER_TEXT in m["text"]]


def action_ids(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def run_together(*calls: Callable[[], T]) -> list[T]:
    """Run `calls` in threads released at once by a barrier; re-raise what any of them raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], T]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "a sweep did not finish"
    if errors:
        raise errors[0]
    return results


def full_sweep(jobs: Jobs, now: datetime) -> int:
    """What the scheduler runs each interval; returns the number of reminders sent."""
    jobs.deliverer.drain(now=now)
    sent = jobs.remind(now)
    jobs.auto_close(now)
    jobs.digest(now)
    return sent


# --- reminders ---------------------------------------------------------------------------------


@pytest.mark.parametrize("severity", ["SEV1", "SEV2", "SEV3"])
def test_a_reminder_is_due_after_the_default_cadence_of_its_severity_and_not_a_second_before(
    fake_slack: FakeSlack, committing_sessions: Sessions, severity: str
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    cadence = DEFAULT_CADENCES[severity]
    assert cadence is not None
    incident_id, ts = with_card(jobs, sessions, severity, BASE, owner=OWNER)

    assert jobs.remind(BASE + cadence - SECOND) == 0
    assert reminders(fake_slack, ts) == []
    assert row(sessions, incident_id).next_reminder_at == BASE + cadence

    assert jobs.remind(BASE + cadence) == 1
    sent = reminders(fake_slack, ts)
    assert len(sent) == 1, "one reminder, threaded under the card"
    assert sent[0]["thread_ts"] == ts
    assert len(cards(fake_slack)) == 1, "a reminder is a thread reply, never a new message"
    assert [e.actor for e in events(sessions, incident_id, EventKind.REMINDER)] == ["system"]


def test_sev4_gets_no_reminder_by_default(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    low, low_ts = with_card(jobs, sessions, "SEV4", BASE)
    _high, high_ts = with_card(jobs, sessions, "SEV1", BASE)

    sent = jobs.remind(BASE + timedelta(days=30))

    assert sent == 1, "the SEV1 beside it is reminded: the sweep did run"
    assert len(reminders(fake_slack, high_ts)) == 1
    assert reminders(fake_slack, low_ts) == []
    assert row(sessions, low).next_reminder_at is None
    assert events(sessions, low, EventKind.REMINDER) == []


def test_a_configured_cadence_replaces_the_default(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    cadences = {**DEFAULT_CADENCES, "SEV3": timedelta(minutes=10), "SEV4": timedelta(hours=2)}
    jobs = make_jobs(fake_slack, sessions, reminder_cadences=cadences)
    sev3, sev3_ts = with_card(jobs, sessions, "SEV3", BASE)
    sev4, sev4_ts = with_card(jobs, sessions, "SEV4", BASE)

    assert jobs.remind(BASE + timedelta(minutes=10) - SECOND) == 0
    assert jobs.remind(BASE + timedelta(minutes=10)) == 1
    assert len(reminders(fake_slack, sev3_ts)) == 1
    assert reminders(fake_slack, sev4_ts) == []
    assert jobs.remind(BASE + timedelta(minutes=20)) == 1, "SEV3 again 10 min later"
    assert jobs.remind(BASE + timedelta(hours=2) - SECOND) == 1, "SEV3 once more, not SEV4"
    assert reminders(fake_slack, sev4_ts) == []
    assert jobs.remind(BASE + timedelta(hours=2)) == 1, "SEV4 at last"
    assert len(reminders(fake_slack, sev4_ts)) == 1
    assert len(reminders(fake_slack, sev3_ts)) == 3
    assert len(events(sessions, sev3, EventKind.REMINDER)) == 3
    assert len(events(sessions, sev4, EventKind.REMINDER)) == 1


def _note(sessions: Sessions, incident_id: int, at: datetime) -> None:
    add_note(sessions, incident_id, "still looking at the load balancer", at)


def _status(sessions: Sessions, incident_id: int, at: datetime) -> None:
    set_status(sessions, incident_id, "investigating", at)


def _assign(sessions: Sessions, incident_id: int, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.assign(session, incident_id, REPORTER, owner=OWNER, now=at)


def _edit(sessions: Sessions, incident_id: int, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.edit(session, incident_id, REPORTER, {"service": "checkout"}, now=at)


@pytest.mark.parametrize("change", [_note, _status, _assign, _edit])
def test_any_change_or_note_postpones_the_next_reminder(
    fake_slack: FakeSlack, committing_sessions: Sessions, change: Callable[..., None]
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, ts = with_card(jobs, sessions, "SEV1", BASE)
    assert jobs.remind(BASE + timedelta(minutes=5)) == 0
    assert row(sessions, incident_id).next_reminder_at == BASE + timedelta(minutes=15)

    change(sessions, incident_id, BASE + timedelta(minutes=10))

    changed = row(sessions, incident_id)
    assert changed.updated_at == BASE + timedelta(minutes=10)
    assert changed.next_reminder_at is None, "a change clears the due time"
    assert jobs.remind(BASE + timedelta(minutes=15)) == 0, "the old due time no longer holds"
    assert row(sessions, incident_id).next_reminder_at == BASE + timedelta(minutes=25)
    assert jobs.remind(BASE + timedelta(minutes=25) - SECOND) == 0
    assert jobs.remind(BASE + timedelta(minutes=25)) == 1
    assert len(reminders(fake_slack, ts)) == 1


def test_a_severity_change_switches_the_cadence(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, ts = with_card(jobs, sessions, "SEV3", BASE)
    assert jobs.remind(BASE + timedelta(minutes=1)) == 0
    assert row(sessions, incident_id).next_reminder_at == BASE + timedelta(hours=4)

    raised = BASE + timedelta(hours=1)
    set_severity(sessions, incident_id, "SEV1", raised)

    assert jobs.remind(raised + timedelta(minutes=15) - SECOND) == 0
    assert jobs.remind(raised + timedelta(minutes=15)) == 1, "SEV1 now: 15 min, not 4 h"
    assert len(reminders(fake_slack, ts)) == 1

    lowered = raised + timedelta(minutes=20)
    set_severity(sessions, incident_id, "SEV4", lowered)

    assert jobs.remind(lowered + timedelta(days=3)) == 0, "SEV4 has no cadence"
    assert len(reminders(fake_slack, ts)) == 1
    assert row(sessions, incident_id).next_reminder_at is None


def test_a_reminder_is_not_an_update_and_the_next_one_comes_a_cadence_later(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, ts = with_card(jobs, sessions, "SEV1", BASE, owner=OWNER)
    card_edits = len(fake_slack.calls_to("chat.update"))

    assert jobs.remind(BASE + timedelta(minutes=15)) == 1

    reminded = row(sessions, incident_id)
    assert reminded.updated_at == BASE, "a reminder must not count as an update"
    assert reminded.next_reminder_at == BASE + timedelta(minutes=30)
    assert jobs.remind(BASE + timedelta(minutes=30) - SECOND) == 0
    assert jobs.remind(BASE + timedelta(minutes=30)) == 1
    texts = [m["text"] for m in reminders(fake_slack, ts)]
    assert len(texts) == 2
    assert "15 min" in texts[0] and "30 min" in texts[1], texts
    assert len(fake_slack.calls_to("chat.update")) == card_edits, "the card is not edited"
    assert row(sessions, incident_id).updated_at == BASE


def test_the_reminder_mentions_the_owner_else_the_reporter_and_offers_update_and_snooze(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    _owned, owned_ts = with_card(jobs, sessions, "SEV1", BASE, owner=OWNER)
    _unowned, unowned_ts = with_card(jobs, sessions, "SEV1", BASE)

    assert jobs.remind(BASE + timedelta(minutes=15)) == 2

    [to_owner] = reminders(fake_slack, owned_ts)
    [to_reporter] = reminders(fake_slack, unowned_ts)
    assert to_owner["thread_ts"] == owned_ts and to_reporter["thread_ts"] == unowned_ts
    assert f"<@{OWNER}>" in to_owner["text"]
    assert f"<@{REPORTER.user_id}>" not in to_owner["text"]
    assert f"<@{REPORTER.user_id}>" in to_reporter["text"]
    for message in (to_owner, to_reporter):
        buttons = action_ids(message)
        assert "incident_add_note" in buttons, "a Post update button"
        assert "incident_snooze_reminders:60" in buttons, "a Snooze button"
        rendered = json.dumps(message["blocks"])
        assert "Post update" in rendered and "Snooze" in rendered


def test_snooze_clicked_on_a_reminder_holds_reminders_for_an_hour(slackbot: Bot):
    fake, sessions = slackbot.fake, slackbot.sessions
    jobs = Jobs(slackbot.settings, sessions, Deliverer(sessions, make_client(slackbot.settings)))
    # The click goes through the bot, which uses the real clock: so does this test.
    start = datetime.now(UTC)
    declared = start - timedelta(minutes=14)
    incident_id = declare(sessions, "SEV1", declared, owner=OWNER)
    jobs.deliverer.drain(now=datetime.now(UTC))  # the card row is due from when it was written
    ts = row(sessions, incident_id).card_ts
    assert ts is not None
    assert jobs.remind(declared + timedelta(minutes=15)) == 1
    [reminder] = reminders(fake, ts)

    before = datetime.now(UTC)
    click = payloads.block_actions_from(
        reminder, "incident_snooze_reminders:60", channel_id=CHANNEL, fake=fake
    )
    status, _headers, _body = slackbot.post(click)
    assert status == 200
    [snoozed] = fake.wait_for(
        lambda: [m for m in fake.thread(CHANNEL, ts) if "snoozed" in m["text"]]
    )
    after = datetime.now(UTC)

    assert f"<@{CLICKER}>" in snoozed["text"] and snoozed["thread_ts"] == ts
    incident = row(sessions, incident_id)
    until = incident.next_reminder_at
    assert until is not None
    assert before + timedelta(minutes=60) <= until <= after + timedelta(minutes=60)
    assert incident.updated_at == declared, "a snooze is not an update"
    [event] = events(sessions, incident_id, EventKind.REMINDERS_SNOOZED)
    assert event.actor == CLICKER
    assert jobs.remind(until - SECOND) == 0, "snoozed: nothing before the hour is up"
    assert jobs.remind(until) == 1
    assert len(reminders(fake, ts)) == 2


@pytest.mark.parametrize("final", ["resolved", "closed"])
def test_resolved_and_closed_incidents_get_no_reminders(
    fake_slack: FakeSlack, committing_sessions: Sessions, final: str
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    done, done_ts = with_card(jobs, sessions, "SEV1", BASE)
    mitigated, mitigated_ts = with_card(jobs, sessions, "SEV1", BASE)
    assert jobs.remind(BASE + timedelta(minutes=1)) == 0  # both have a due time now
    set_status(sessions, done, final, BASE + timedelta(minutes=5))
    set_status(sessions, mitigated, "mitigated", BASE + timedelta(minutes=5))

    sent = sum(jobs.remind(BASE + timedelta(minutes=m)) for m in (20, 35, 180))

    assert sent == 3, "the mitigated one, still active, is reminded at +20, +35 and +180 min"
    assert len(reminders(fake_slack, mitigated_ts)) == 3
    assert reminders(fake_slack, done_ts) == []
    assert events(sessions, done, EventKind.REMINDER) == []


@pytest.mark.parametrize("day", ["2031-01-15", "2031-07-15"], ids=["winter", "summer"])
def test_quiet_hours_hold_reminders_and_they_go_out_when_the_quiet_hours_end(
    fake_slack: FakeSlack, committing_sessions: Sessions, day: str
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions, quiet_hours=(time(22, 0), time(7, 0)), timezone=PARIS)
    year, month, date = (int(part) for part in day.split("-"))

    def paris(days: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
        local = datetime(year, month, date, hour, minute, second, tzinfo=PARIS)
        return (local + timedelta(days=days)).astimezone(UTC)  # the sweeps get UTC instants

    evening, evening_ts = with_card(jobs, sessions, "SEV1", paris(0, 21, 30))
    assert jobs.remind(paris(0, 21, 45)) == 1, "21:45 in Paris is not quiet"
    night, night_ts = with_card(jobs, sessions, "SEV1", paris(0, 21, 50))

    held = [paris(0, 22, 0), paris(0, 22, 5), paris(1, 3, 0), paris(1, 6, 59, 59)]
    assert [jobs.remind(now) for now in held] == [0, 0, 0, 0]
    assert reminders(fake_slack, night_ts) == []
    assert len(reminders(fake_slack, evening_ts)) == 1

    assert jobs.remind(paris(1, 7, 0)) == 2, "both held reminders go out at 07:00 Paris time"
    [night_reminder] = reminders(fake_slack, night_ts)
    assert "9 h 10 min" in night_reminder["text"], night_reminder["text"]
    assert row(sessions, night).next_reminder_at == paris(1, 7, 15)
    assert len(events(sessions, evening, EventKind.REMINDER)) == 2


def test_reminders_survive_a_restart_and_a_due_one_is_sent_exactly_once(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: Sessions
):
    sessions = committing_sessions
    first = make_jobs(fake_slack, sessions, retrying=False)
    sent_before_down, ts_a = with_card(first, sessions, "SEV1", BASE)
    due_after_restart, ts_b = with_card(first, sessions, "SEV2", BASE)
    assert first.remind(BASE + timedelta(minutes=10)) == 0
    # Slack is down when A's reminder falls due: it is recorded, the reply waits in the outbox.
    fake_slack.fail("chat.postMessage", status=500, times=None)
    assert first.remind(BASE + timedelta(minutes=15)) == 1
    fake_slack.clear_faults()
    assert reminders(fake_slack, ts_a) == []
    del first  # the process stops

    second = make_jobs(fake_slack, sessionmaker(engine, expire_on_commit=False))
    sweeps = [BASE + timedelta(minutes=m) for m in (16, 16, 29)]
    assert [full_sweep(second, now) for now in sweeps] == [0, 0, 0]
    assert len(reminders(fake_slack, ts_a)) == 1, "the recorded reminder is delivered once"
    assert reminders(fake_slack, ts_b) == []

    third = make_jobs(fake_slack, sessionmaker(engine, expire_on_commit=False))
    assert third.remind(BASE + timedelta(minutes=30)) == 2, "B at +30 min, A again at +30 min"
    assert third.remind(BASE + timedelta(minutes=30)) == 0
    assert len(reminders(fake_slack, ts_b)) == 1
    assert len(reminders(fake_slack, ts_a)) == 2
    assert len(events(sessions, sent_before_down, EventKind.REMINDER)) == 2
    assert len(events(sessions, due_after_restart, EventKind.REMINDER)) == 1


def test_two_schedulers_sweeping_at_once_send_each_due_reminder_once(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_channel(DIGEST_CHANNEL, "incidents")
    one, two = (make_jobs(fake_slack, sessions, incident_channel=DIGEST_CHANNEL) for _ in range(2))
    sev1 = [with_card(one, sessions, "SEV1", BASE) for _ in range(6)]
    sev2 = [with_card(one, sessions, "SEV2", BASE) for _ in range(3)]

    rounds = [BASE + timedelta(minutes=m) for m in (15, 30, 45, 60)]
    sent = [
        sum(run_together(lambda t=t: full_sweep(one, t), lambda t=t: full_sweep(two, t)))
        for t in rounds
    ]

    assert sent == [6, 9, 6, 9], "each due reminder once per round, whichever sweeper sent it"
    for incident_id, ts in sev1:
        assert len(reminders(fake_slack, ts)) == 4
        assert len(events(sessions, incident_id, EventKind.REMINDER)) == 4
    for incident_id, ts in sev2:
        assert len(reminders(fake_slack, ts)) == 2
        assert len(events(sessions, incident_id, EventKind.REMINDER)) == 2
    assert len(cards(fake_slack, DIGEST_CHANNEL)) == 1, "one digest for the day"
    assert pending(sessions) == []


def test_snoozing_a_reminder_of_an_incident_lowered_to_sev4_does_not_bring_reminders_back(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """The Snooze button stays on an old reminder after the severity is lowered to SEV4."""
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, ts = with_card(jobs, sessions, "SEV2", BASE)
    assert jobs.remind(BASE + timedelta(minutes=30)) == 1
    set_severity(sessions, incident_id, "SEV4", BASE + timedelta(minutes=35))

    with sessions.begin() as session:  # someone clicks "Snooze 1 h" on the SEV2 reminder
        incidents.snooze_reminders(
            session, incident_id, Actor(CLICKER), timedelta(hours=1), now=BASE + timedelta(hours=1)
        )

    assert jobs.remind(BASE + timedelta(days=2)) == 0, "SEV4 gets no reminders"
    assert len(reminders(fake_slack, ts)) == 1


def test_reminders_off_for_every_severity_sends_none_and_the_digest_still_goes_out(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """REMINDER_CADENCES=SEV1=off,SEV2=off,SEV3=off (SEV4 is off by default): reminders off."""
    sessions = committing_sessions
    fake_slack.add_channel(DIGEST_CHANNEL, "incidents")
    off = Settings.from_env({"REMINDER_CADENCES": "SEV1=off,SEV2=off,SEV3=off"}).reminder_cadences
    assert off == dict.fromkeys(DEFAULT_CADENCES), "a configuration the settings accept"
    jobs = make_jobs(fake_slack, sessions, reminder_cadences=off, incident_channel=DIGEST_CHANNEL)
    declare(sessions, "SEV1", BASE)
    next_day = BASE + timedelta(days=1)

    outcome: dict[str, object] = {}
    for name, sweep in (("remind", jobs.remind), ("digest", jobs.digest)):
        try:
            outcome[name] = sweep(next_day)
        except Exception as error:  # reported side by side, so both sweeps are checked
            outcome[name] = f"raised {type(error).__name__}: {str(error).splitlines()[0]}"

    assert outcome == {"remind": 0, "digest": True}
    assert len(cards(fake_slack, DIGEST_CHANNEL)) == 1


def test_a_sweep_on_the_real_clock_sends_what_it_queued_in_the_same_sweep(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """In production `now` is the wall clock: each sweep drains what it has just queued."""
    sessions = committing_sessions
    fake_slack.add_channel(DIGEST_CHANNEL, "incidents")
    jobs = make_jobs(fake_slack, sessions, incident_channel=DIGEST_CHANNEL, digest_time=time(0, 0))
    start = datetime.now(UTC)
    overdue = declare(sessions, "SEV1", start - timedelta(minutes=20))
    stale = declare(sessions, "SEV2", start - timedelta(days=9))
    set_status(sessions, stale, "resolved", start - timedelta(days=8))
    jobs.deliverer.drain(now=datetime.now(UTC))
    assert pending(sessions) == []

    def left_behind(incident_id: int | None) -> list[str]:
        return [d.action.value for d in pending(sessions) if d.incident_id == incident_id]

    found: dict[str, list[str]] = {}
    assert jobs.remind(datetime.now(UTC)) == 1
    found["remind"] = left_behind(overdue)
    assert jobs.auto_close(datetime.now(UTC)) == 1
    found["auto_close"] = left_behind(stale)
    assert jobs.digest(datetime.now(UTC)) is True
    found["digest"] = left_behind(None)
    jobs.deliverer.drain(now=datetime.now(UTC))
    assert pending(sessions) == [], "the next drain sends them"

    assert found == {"remind": [], "auto_close": [], "digest": []}, (
        "rows queued by a sweep must go out in that sweep, not one interval later"
    )
    assert len(events(sessions, overdue, EventKind.REMINDER)) == 1


# --- auto-close --------------------------------------------------------------------------------


def test_resolved_for_seven_days_without_change_is_closed_by_system_with_a_threaded_reply(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    resolved, ts = with_card(jobs, sessions, "SEV2", BASE - timedelta(days=1))
    idle, _idle_ts = with_card(jobs, sessions, "SEV3", BASE - timedelta(days=30))
    set_status(sessions, resolved, "resolved", BASE, note="rolled back")
    set_status(sessions, idle, "mitigated", BASE - timedelta(days=29))
    jobs.deliverer.drain(now=BASE)
    replies_before = len(fake_slack.thread(CHANNEL, ts))

    assert jobs.auto_close(BASE + timedelta(days=6, hours=23)) == 0
    assert row(sessions, resolved).status == Status.RESOLVED

    closed_at = BASE + timedelta(days=7)
    assert jobs.auto_close(closed_at) == 1
    assert jobs.auto_close(closed_at + timedelta(minutes=1)) == 0

    incident = row(sessions, resolved)
    assert (incident.status, incident.closed_at) == (Status.CLOSED, closed_at)
    last = events(sessions, resolved)[-1]
    assert (last.kind, last.actor, last.from_value, last.to_value) == (
        EventKind.STATUS_CHANGED,
        "system",
        "resolved",
        "closed",
    )
    assert last.occurred_at == closed_at
    thread = fake_slack.thread(CHANNEL, ts)
    assert len(thread) == replies_before + 1, "one threaded reply about the closing"
    assert "closed" in thread[-1]["text"]
    assert "[SEV2, closed]" in fake_slack.message(CHANNEL, ts)["text"], "the card shows it"
    assert row(sessions, idle).status == Status.MITIGATED, "only resolved incidents close"
    assert pending(sessions) == []


def test_auto_close_off_never_closes(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions, auto_close_after=None)
    incident_id = declare(sessions, "SEV3", BASE - timedelta(days=1))
    set_status(sessions, incident_id, "resolved", BASE)

    assert jobs.auto_close(BASE + timedelta(days=365)) == 0
    assert row(sessions, incident_id).status == Status.RESOLVED

    on = make_jobs(fake_slack, sessions)  # control: the same incident with the default closes
    assert on.auto_close(BASE + timedelta(days=365)) == 1


def test_a_change_during_the_seven_days_restarts_the_wait(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, _ts = with_card(jobs, sessions, "SEV3", BASE - timedelta(days=1))
    set_status(sessions, incident_id, "resolved", BASE)
    add_note(sessions, incident_id, "postmortem scheduled", BASE + timedelta(days=3))

    assert jobs.auto_close(BASE + timedelta(days=7)) == 0
    assert jobs.auto_close(BASE + timedelta(days=10) - SECOND) == 0
    assert row(sessions, incident_id).status == Status.RESOLVED
    assert jobs.auto_close(BASE + timedelta(days=10)) == 1
    assert row(sessions, incident_id).status == Status.CLOSED


# --- the daily digest --------------------------------------------------------------------------


def digest_jobs(fake: FakeSlack, sessions: Sessions, **settings: Any) -> Jobs:
    fake.add_channel(DIGEST_CHANNEL, "incidents")
    settings = {
        "incident_channel": DIGEST_CHANNEL,
        "digest_time": time(9, 0),
        "timezone": NEW_YORK,
        **settings,
    }
    return make_jobs(fake, sessions, **settings)


def digests(fake: FakeSlack) -> list[dict[str, Any]]:
    return cards(fake, DIGEST_CHANNEL)


@pytest.mark.parametrize(
    ("day", "nine_am_utc"),
    [("2031-01-15", 14), ("2031-07-15", 13)],
    ids=["winter-EST", "summer-EDT"],
)
def test_no_digest_before_the_digest_time_in_the_configured_time_zone(
    fake_slack: FakeSlack, committing_sessions: Sessions, day: str, nine_am_utc: int
):
    jobs = digest_jobs(fake_slack, committing_sessions)
    year, month, date = (int(part) for part in day.split("-"))
    nine_am_new_york = datetime(year, month, date, nine_am_utc, 0, tzinfo=UTC)

    assert jobs.digest(datetime(year, month, date, 9, 0, tzinfo=UTC)) is False, "09:00 UTC"
    assert jobs.digest(nine_am_new_york - SECOND) is False
    assert digests(fake_slack) == []
    assert jobs.digest(nine_am_new_york) is True
    [digest] = digests(fake_slack)
    assert day in digest["text"], "the digest is for the local day"


def test_exactly_one_digest_per_local_day_however_often_it_is_swept(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    jobs = digest_jobs(fake_slack, committing_sessions)
    day_one = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)  # 09:00 in New York
    same_local_day = [
        day_one,
        day_one + timedelta(seconds=10),
        day_one + timedelta(hours=4),
        datetime(2031, 1, 16, 4, 59, 59, tzinfo=UTC),  # 23:59:59 in New York, a new UTC day
    ]
    next_day_early = [
        datetime(2031, 1, 16, 5, 0, tzinfo=UTC),  # midnight in New York
        datetime(2031, 1, 16, 13, 59, 59, tzinfo=UTC),
    ]

    assert [jobs.digest(now) for now in same_local_day] == [True, False, False, False]
    assert [jobs.digest(now) for now in next_day_early] == [False, False]
    assert jobs.digest(datetime(2031, 1, 16, 14, 0, tzinfo=UTC)) is True

    texts = [m["text"] for m in digests(fake_slack)]
    assert len(texts) == 2
    assert "2031-01-15" in texts[0] and "2031-01-16" in texts[1]


def test_several_schedulers_at_once_post_one_digest(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    all_jobs = [digest_jobs(fake_slack, sessions) for _ in range(4)]
    nine_am = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)

    claimed = run_together(*[lambda jobs=jobs: jobs.digest(nine_am) for jobs in all_jobs])
    again = run_together(*[lambda jobs=jobs: jobs.digest(nine_am + SECOND) for jobs in all_jobs])

    assert sorted(claimed) == [False, False, False, True]
    assert again == [False] * 4
    assert len(digests(fake_slack)) == 1


def digest_listings(message: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    """(heading, count shown, incident numbers listed) for each list in a digest."""
    listings: list[tuple[str, int, list[int]]] = []
    for block in message.get("blocks") or []:
        if block["type"] != "section":
            continue
        text = block["text"]["text"]
        heading = re.match(r"^\*(.+)\* \((\d+)\)$", text)
        if heading:
            listings.append((heading.group(1), int(heading.group(2)), []))
        elif listings:
            listings[-1][2].extend(int(n) for n in re.findall(r"INC-(\d+)", text))
    return listings


def test_digest_lists_active_by_severity_resolved_in_the_last_day_and_stale_ones(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = digest_jobs(fake_slack, sessions)
    now = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)  # 09:00 in New York
    h = timedelta(hours=1)
    low = declare(sessions, "SEV4", now - timedelta(days=14))  # oldest; no cadence: never stale
    medium = declare(sessions, "SEV3", now - 2 * h)  # 2 h < 4 h
    high_stale = declare(sessions, "SEV2", now - h)  # 1 h > 30 min
    fresh = declare(sessions, "SEV1", now - timedelta(minutes=10))  # 10 min < 15 min
    noted = declare(sessions, "SEV1", now - h)
    add_note(sessions, noted, "waiting on the vendor", now - timedelta(minutes=20))  # > 15 min
    reopened = declare(sessions, "SEV1", now - 3 * h)
    set_status(sessions, reopened, "resolved", now - timedelta(minutes=150))
    set_status(sessions, reopened, "investigating", now - 2 * h)
    recent = declare(sessions, "SEV2", now - 4 * h)
    set_status(sessions, recent, "resolved", now - 2 * h)
    old = declare(sessions, "SEV3", now - timedelta(days=2))
    set_status(sessions, old, "resolved", now - 30 * h)
    closed = declare(sessions, "SEV1", now - timedelta(days=5))
    set_status(sessions, closed, "resolved", now - timedelta(days=3))
    set_status(sessions, closed, "closed", now - timedelta(days=2))
    severity = {
        low: 4,
        medium: 3,
        high_stale: 2,
        fresh: 1,
        noted: 1,
        reopened: 1,
        recent: 2,
        old: 3,
        closed: 1,
    }

    assert jobs.digest(now) is True

    [digest] = digests(fake_slack)
    assert cards(fake_slack, CHANNEL) and not any(
        "digest" in m["text"].lower() for m in cards(fake_slack, CHANNEL)
    ), "the digest goes to INCIDENT_CHANNEL, not to the cards' channel"
    assert "2031-01-15" in digest["text"]
    active, resolved, stale = digest_listings(digest)
    assert "active" in active[0].lower() and active[1] == 6
    assert set(active[2]) == {low, medium, high_stale, fresh, noted, reopened}
    shown = [severity[i] for i in active[2]]
    assert shown == sorted(shown), f"most severe first: {shown}"
    assert "resolved" in resolved[0].lower() and (resolved[1], resolved[2]) == (1, [recent])
    assert "update" in stale[0].lower() and stale[1] == 3
    assert set(stale[2]) == {high_stale, noted, reopened}


@pytest.mark.parametrize(
    "settings",
    [{"incident_channel": None}, {"digest_time": None}],
    ids=["no-INCIDENT_CHANNEL", "DIGEST_TIME-off"],
)
def test_no_digest_without_an_incident_channel_or_a_digest_time(
    fake_slack: FakeSlack, committing_sessions: Sessions, settings: dict[str, Any]
):
    sessions = committing_sessions
    jobs = digest_jobs(fake_slack, sessions, **settings)
    declare(sessions, "SEV1", BASE)
    nine_am = datetime(2031, 1, 15, 14, 0, tzinfo=UTC)

    assert [jobs.digest(nine_am + timedelta(hours=h)) for h in (0, 1, 24)] == [False] * 3
    posted = [p for p in fake_slack.calls_to("chat.postMessage") if "digest" in p.get("text", "")]
    assert posted == []
    with sessions() as session:
        assert session.scalars(select(Digest)).all() == []

    control = digest_jobs(fake_slack, sessions)
    assert control.digest(nine_am) is True
    assert len(digests(fake_slack)) == 1


# --- delivery under faults ---------------------------------------------------------------------

MARKER = re.compile(r"\[m(\d+)\.(\d+)\]")
# Eight changes per incident, each carrying a unique marker in its note.
SCRIPT = [
    ("status", "investigating"),
    ("note", None),
    ("status", "mitigated"),
    ("note", None),
    ("status", "investigating"),
    ("note", None),
    ("status", "resolved"),
    ("note", None),
]
SWEEP_EVERY = timedelta(minutes=16)  # longer than the longest backoff: every row is due again


def test_a_burst_of_changes_while_slack_fails_half_the_calls_is_delivered_once_in_order(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fault = fake_slack.fail_ratio(
        0.5,
        methods=["chat.postMessage", "chat.update"],
        seed=20310115,
        error="internal_error",
        status=500,
    )
    jobs = make_jobs(fake_slack, sessions, retrying=False)
    clock = BASE
    sweep = 0
    made_in: dict[tuple[int, int], int] = {}
    seen_in: dict[tuple[int, int], int] = {}

    def sweep_once() -> None:
        nonlocal clock, sweep
        jobs.deliverer.drain(now=clock)
        sweep += 1
        clock += SWEEP_EVERY
        for message in fake_slack.messages(CHANNEL, include_replies=True):
            for found in MARKER.findall(message["text"]):
                seen_in.setdefault((int(found[0]), int(found[1])), sweep)

    ids = [
        declare(sessions, severity, clock) for severity in ("SEV1", "SEV2", "SEV3", "SEV4", "SEV2")
    ]
    sweep_once()
    for step, (kind, target) in enumerate(SCRIPT, start=1):
        for incident_id in ids:
            marker = f"[m{incident_id}.{step}]"
            if kind == "status":
                set_status(sessions, incident_id, target, clock, note=f"{target} {marker}")
            else:
                add_note(sessions, incident_id, f"progress {marker}", clock)
            made_in[(incident_id, step)] = sweep + 1
        sweep_once()
    changes_done_after = sweep
    while pending(sessions) and sweep < 200:
        sweep_once()
    fake_slack.clear_faults()

    delivered = [
        (int(i), int(s))
        for m in fake_slack.messages(CHANNEL, include_replies=True)
        for i, s in MARKER.findall(m["text"])
    ]
    duplicates = len(delivered) - len(set(delivered))
    delays = [seen_in[key] - made_in[key] for key in made_in if key in seen_in]
    worst = max(delays) if len(delays) == len(made_in) else None
    print(
        f"\nfault run: {len(made_in)} changes made across {len(ids)} incidents; "
        f"{len(set(delivered))} replies delivered, {duplicates} duplicates; "
        f"{fault.hits} Slack calls failed of {len(fake_slack.calls)}; "
        f"{sweep} sweeps in all, {sweep - changes_done_after} after the last change; "
        f"worst delay {worst} sweeps"
    )

    assert fault.hits >= 20, "the fake must really have failed calls"
    assert pending(sessions) == [], f"still undelivered after {sweep} sweeps"
    assert [d for d in deliveries(sessions) if d.failed_at is not None] == []
    assert duplicates == 0
    assert set(delivered) == set(made_in), "every change's reply is delivered"
    posted_cards = cards(fake_slack)
    assert len(posted_cards) == len(ids), "one card per incident, no duplicates"
    for incident_id in ids:
        incident = row(sessions, incident_id)
        assert incident.card_ts in {c["ts"] for c in posted_cards}
        in_db = [
            tuple(map(int, found))
            for event in events(sessions, incident_id)
            if event.kind != EventKind.CREATED
            for found in MARKER.findall(event.text or "")
        ]
        in_thread = [
            tuple(map(int, found))
            for reply in fake_slack.thread(CHANNEL, incident.card_ts)
            for found in MARKER.findall(reply["text"])
        ]
        assert in_thread == in_db, f"INC-{incident_id}: the thread must follow the timeline"
        assert (
            f"{incident.severity.value}, resolved]"
            in fake_slack.message(CHANNEL, incident.card_ts)["text"]
        ), "the card ends up showing the last status"
    assert worst is not None and worst <= 25, f"worst delay {worst} sweeps"
    assert sweep - changes_done_after <= 25, "bounded number of sweeps to drain"


def test_a_permanent_failure_is_recorded_logged_and_shown_by_incident_show(
    slackbot: Bot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="bot.delivery")
    fake, sessions = slackbot.fake, slackbot.sessions
    gone = "C0GONE00001"
    fake.add_channel(gone, "archived-channel", is_archived=True)
    jobs = make_jobs(fake, sessions)
    incident_id = declare(sessions, "SEV2", BASE, channel=gone)
    set_status(sessions, incident_id, "investigating", BASE + timedelta(minutes=1))

    jobs.deliverer.drain(now=BASE + timedelta(minutes=2))
    calls = len(fake.calls)
    jobs.deliverer.drain(now=BASE + timedelta(hours=2))

    assert len(fake.calls) == calls, "a permanent failure is not retried"
    rows = deliveries(sessions)
    assert [r.failed_at is not None for r in rows] == [True] * len(rows)
    card_row = rows[0]
    assert card_row.action == DeliveryAction.POST_CARD
    assert card_row.last_error == "is_archived"
    logged = [r.getMessage() for r in caplog.records if "is_archived" in r.getMessage()]
    assert logged and "permanent" in logged[0]

    before = len(slackbot.responses())
    status, _headers, _body = slackbot.command(f"show {incident_id}")
    assert status == 200
    shown = fake.wait_for(lambda: slackbot.responses()[before:])
    rendered = json.dumps(shown[-1], ensure_ascii=False)
    assert f"INC-{incident_id}" in rendered
    assert "Not delivered" in rendered and "is_archived (gave up)" in rendered


# --- Slack event redelivery --------------------------------------------------------------------


def test_an_event_slack_redelivers_is_processed_once(slackbot: Bot, engine: Engine):
    fake = slackbot.fake
    event_id = "Ev0SCHED0001"
    opened = payloads.event_callback(
        payloads.app_home_opened_event(defaults.USER_ID), event_id=event_id
    )

    first = slackbot.post(opened)
    fake.wait_for_call("views.publish")
    retried = slackbot.post(opened, retry_num=1, retry_reason="http_timeout")
    # A different event afterwards: once it is handled, a redelivery handled twice would show.
    other = payloads.event_callback(payloads.app_home_opened_event(ADMIN_ID), event_id="Ev0OTHER")
    slackbot.post(other)
    fake.wait_for_call("views.publish", count=2)

    assert first[0] == 200 and retried[0] == 200, "Slack must get a 200 so it stops retrying"
    published_for = [p["user_id"] for p in fake.calls_to("views.publish")]
    assert published_for == [defaults.USER_ID, ADMIN_ID]
    with sessionmaker(engine)() as session:
        remembered = session.scalars(select(ProcessedEvent.event_id)).all()
    assert sorted(remembered) == sorted([event_id, "Ev0OTHER"])


def test_forget_old_events_removes_event_ids_older_than_a_day(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    ages = {
        "Ev0AGE2DAYS": timedelta(days=2),
        "Ev0AGE24H1S": timedelta(days=1, seconds=1),
        "Ev0AGE23H59": timedelta(hours=23, minutes=59),
        "Ev0AGE1MIN": timedelta(minutes=1),
    }
    with sessions.begin() as session:
        session.add_all(
            ProcessedEvent(event_id=e, received_at=BASE - age) for e, age in ages.items()
        )

    jobs.forget_old_events(BASE)

    with sessions() as session:
        kept = set(session.scalars(select(ProcessedEvent.event_id)))
    assert kept == {"Ev0AGE23H59", "Ev0AGE1MIN"}

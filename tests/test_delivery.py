"""The delivery outbox: every Slack side effect of a change is sent in order, and kept when Slack
fails.

Two levels. `Deliverer.drain` driven directly against the fake Slack, with real commits and faults
injected in the fake; and the real bot over HTTP, where a failing Slack must never cost the user
their change nor leave them without an explanation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer, DrainResult
from bot.incidents import Actor, IncidentDraft
from bot.slack.app import make_client
from db.models import Delivery, DeliveryAction, Incident, SlackRateLimit, Status
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import ADMIN_ID, Bot, bot_settings

ALICE = Actor("U0ALICE0001")
ADMIN = Actor(ADMIN_ID, is_admin=True)
CHANNEL = defaults.CHANNEL_ID
# The backoffs the design promises, written out independently of bot.delivery.
FIRST_BACKOFF = timedelta(seconds=5)
ACTION_NEEDED_BACKOFF = timedelta(minutes=5)
LATER = timedelta(hours=1)  # a drain this far ahead finds every backoff over

Sessions = sessionmaker[Session]


# --- Helpers -----------------------------------------------------------------------------------


def declare(sessions: Sessions, channel: str | None = CHANNEL, severity: str = "SEV3") -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout is failing", severity=severity, slack_channel_id=channel
        )
        return incidents.declare(session, draft, ALICE).id


def set_status(sessions: Sessions, incident_id: int, status: str) -> None:
    with sessions.begin() as session:
        incidents.change_status(session, incident_id, status, ALICE)


def set_severity(sessions: Sessions, incident_id: int, severity: str) -> None:
    with sessions.begin() as session:
        incidents.change_severity(session, incident_id, severity, ALICE)


def add_note(sessions: Sessions, incident_id: int, note: str) -> None:
    with sessions.begin() as session:
        incidents.add_note(session, incident_id, ALICE, note)


def delete(sessions: Sessions, incident_id: int) -> None:
    with sessions.begin() as session:
        incidents.delete_incident(session, incident_id, ADMIN)


def deliveries(sessions: Sessions, incident_id: int | None = None) -> list[Delivery]:
    with sessions() as session:
        query = select(Delivery).order_by(Delivery.id)
        if incident_id is not None:
            query = query.where(Delivery.incident_id == incident_id)
        return list(session.scalars(query))


def pending(rows: list[Delivery]) -> list[Delivery]:
    return [r for r in rows if r.delivered_at is None and r.failed_at is None]


def rate_limits(sessions: Sessions) -> list[tuple[str, str, datetime]]:
    with sessions() as session:
        return [
            (r.channel_id, r.method, r.until)
            for r in session.scalars(select(SlackRateLimit).order_by(SlackRateLimit.channel_id))
        ]


def stored_card_ts(sessions: Sessions, incident_id: int) -> str | None:
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None
        return incident.card_ts


def cards(fake: FakeSlack, channel: str) -> list[dict[str, Any]]:
    """Top-level messages of the bot in `channel` (broadcast thread replies left out)."""
    return [
        m
        for m in fake.messages(channel)
        if m.get("user") == fake.bot_user_id and m.get("subtype") != "thread_broadcast"
    ]


def replies(fake: FakeSlack, channel: str, ts: str) -> list[str]:
    return [m["text"] for m in fake.thread(channel, ts)]


def with_card(sessions: Sessions, fake: FakeSlack, channel: str = CHANNEL) -> tuple[int, str]:
    """An incident whose card is already in Slack; returns its id and the card's ts."""
    incident_id = declare(sessions, channel)
    result = Deliverer(sessions, fake.client()).drain(incident_id=incident_id)
    assert result.problems == [] and result.delivered == 1
    ts = stored_card_ts(sessions, incident_id)
    assert ts is not None
    return incident_id, ts


def errors_of(result: DrainResult) -> list[tuple[str, bool]]:
    return [(p.error, p.permanent) for p in result.problems]


def now() -> datetime:
    return datetime.now(UTC)


# --- Order, once, threaded ---------------------------------------------------------------------


def test_declare_and_changes_go_out_in_order_card_once_and_replies_in_its_thread(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    set_status(sessions, incident_id, "investigating")
    add_note(sessions, incident_id, "marker-one")
    set_severity(sessions, incident_id, "SEV4")
    add_note(sessions, incident_id, "marker-two")
    deliverer = Deliverer(sessions, fake_slack.client())

    result = deliverer.drain(incident_id=incident_id)

    assert result.problems == []
    rows = deliveries(sessions, incident_id)
    assert len(rows) == 9  # the card, then an update and a reply per change
    assert result.delivered == len(rows)
    assert all(r.delivered_at is not None and r.failed_at is None for r in rows)
    [card] = cards(fake_slack, CHANNEL)
    assert stored_card_ts(sessions, incident_id) == card["ts"]
    posts = fake_slack.calls_to("chat.postMessage")
    assert posts[0].get("thread_ts") is None, "the card must be posted before any reply"
    assert [p.get("thread_ts") for p in posts[1:]] == [card["ts"]] * 4
    texts = replies(fake_slack, CHANNEL, card["ts"])
    assert len(texts) == 4
    assert "investigating" in texts[0]
    assert "marker-one" in texts[1]
    assert "SEV3 → SEV4" in texts[2]
    assert "marker-two" in texts[3]
    # The card shows the state after the last change.
    assert "[SEV4, investigating]" in fake_slack.message(CHANNEL, card["ts"])["text"]

    calls = len(fake_slack.calls)
    again = deliverer.drain(incident_id=incident_id)
    assert (again.delivered, again.problems) == (0, [])
    assert len(fake_slack.calls) == calls, "a second drain must send nothing"


def test_three_pending_card_updates_become_one_chat_update(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    set_status(sessions, incident_id, "investigating")
    set_severity(sessions, incident_id, "SEV2")
    with sessions.begin() as session:
        incidents.edit(session, incident_id, ALICE, {"title": "Checkout is failing in EU"})
    fake_slack.clear_calls()

    result = Deliverer(sessions, fake_slack.client()).drain(incident_id=incident_id)

    assert result.problems == []
    assert len(fake_slack.calls_to("chat.update")) == 1
    updates = [
        r for r in deliveries(sessions, incident_id) if r.action == DeliveryAction.UPDATE_CARD
    ]
    assert len(updates) == 3
    assert all(r.delivered_at is not None and r.failed_at is None for r in updates)
    card_text = fake_slack.message(CHANNEL, ts)["text"]
    assert "[SEV2, investigating] Checkout is failing in EU" in card_text
    assert len(replies(fake_slack, CHANNEL, ts)) == 3
    assert pending(deliveries(sessions)) == []


# --- Transient failures: kept, in order, retried -----------------------------------------------


def test_ratelimited_update_waits_for_retry_after_and_nothing_overtakes_it(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    set_status(sessions, incident_id, "investigating")
    deliverer = Deliverer(sessions, fake_slack.client())  # no client-side retry of a 429
    fake_slack.fail("chat.update", error="ratelimited", retry_after=120, times=1)
    t0 = now()

    result = deliverer.drain(incident_id=incident_id, now=t0)
    add_note(sessions, incident_id, "marker-after")  # queued behind the failed row

    assert result.delivered == 0
    assert result.problems == [], "a rate limit is a wait, not a problem to report"
    _card, update, reply, *later = deliveries(sessions, incident_id)
    assert update.action == DeliveryAction.UPDATE_CARD
    assert (update.attempts, update.last_error) == (0, "ratelimited")
    assert (update.delivered_at, update.failed_at) == (None, None)
    assert update.next_attempt_at == t0 + timedelta(seconds=120), "Retry-After must be honoured"
    assert rate_limits(sessions) == [(CHANNEL, "chat.update", t0 + timedelta(seconds=120))]
    assert [r.attempts for r in (reply, *later)] == [0, 0, 0]
    assert replies(fake_slack, CHANNEL, ts) == [], "a reply must not overtake the failed update"

    calls = len(fake_slack.calls)
    early = deliverer.drain(incident_id=incident_id, now=t0 + timedelta(seconds=119))
    assert (early.delivered, early.problems) == (0, [])
    assert len(fake_slack.calls) == calls, "nothing may be sent before Retry-After has passed"

    result = deliverer.drain(incident_id=incident_id, now=t0 + timedelta(seconds=120))

    assert result.problems == []
    assert pending(deliveries(sessions, incident_id)) == []
    texts = replies(fake_slack, CHANNEL, ts)
    assert len(texts) == 2
    assert "investigating" in texts[0] and "marker-after" in texts[1]
    assert "[SEV3, investigating]" in fake_slack.message(CHANNEL, ts)["text"]
    assert len(cards(fake_slack, CHANNEL)) == 1


def test_server_error_on_a_reply_is_retried_with_growing_backoff_then_sent_once(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-one")
    add_note(sessions, incident_id, "marker-two")
    deliverer = Deliverer(sessions, fake_slack.client())
    fake_slack.fail("chat.postMessage", status=500, times=2)
    t0 = now()

    result = deliverer.drain(incident_id=incident_id, now=t0)

    assert errors_of(result) == [("internal_error", False)]
    _card, first_update, first_reply, second_update, second_reply = deliveries(
        sessions, incident_id
    )
    assert first_reply.action == DeliveryAction.POST_THREAD
    assert (first_reply.attempts, first_reply.last_error) == (1, "internal_error")
    assert first_reply.next_attempt_at == t0 + FIRST_BACKOFF
    assert first_reply.failed_at is None and first_reply.delivered_at is None
    assert first_update.delivered_at is not None
    assert second_update.attempts == 0 and second_reply.attempts == 0
    assert replies(fake_slack, CHANNEL, ts) == []

    t1 = t0 + FIRST_BACKOFF
    result = deliverer.drain(incident_id=incident_id, now=t1)
    assert errors_of(result) == [("internal_error", False)]
    [retried] = [r for r in deliveries(sessions, incident_id) if r.id == first_reply.id]
    assert retried.attempts == 2
    assert retried.next_attempt_at > t1 + FIRST_BACKOFF, "the backoff must grow"
    assert retried.next_attempt_at <= t1 + timedelta(minutes=15)

    result = deliverer.drain(incident_id=incident_id, now=t0 + LATER)

    assert result.problems == []
    assert pending(deliveries(sessions, incident_id)) == []
    texts = replies(fake_slack, CHANNEL, ts)
    assert len(texts) == 2
    assert "marker-one" in texts[0] and "marker-two" in texts[1]


def test_a_timed_out_update_stays_pending_and_goes_out_once_slack_answers(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-one")
    deliverer = Deliverer(sessions, fake_slack.client(timeout=0.3))
    fake_slack.delay("chat.update", 1.5, times=1)
    t0 = now()

    result = deliverer.drain(incident_id=incident_id, now=t0)

    assert result.delivered == 0
    [problem] = result.problems
    assert not problem.permanent
    _card, update, reply = deliveries(sessions, incident_id)
    assert update.attempts == 1 and update.last_error
    assert (update.delivered_at, update.failed_at) == (None, None)
    assert update.next_attempt_at == t0 + FIRST_BACKOFF
    assert reply.attempts == 0
    assert fake_slack.calls_to("chat.postMessage")[1:] == [], "the reply must wait for the update"

    result = deliverer.drain(incident_id=incident_id, now=t0 + FIRST_BACKOFF)

    assert result.problems == []
    assert pending(deliveries(sessions, incident_id)) == []
    texts = replies(fake_slack, CHANNEL, ts)
    assert len(texts) == 1 and "marker-one" in texts[0]


def test_the_bots_own_client_gives_up_on_a_lasting_rate_limit_and_the_row_is_kept(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """make_client retries a 429 once itself; a second one must reach the outbox, not be lost."""
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-one")
    deliverer = Deliverer(sessions, make_client(bot_settings(fake_slack)))
    fake_slack.fail("chat.update", error="ratelimited", retry_after=0, times=2)
    t0 = now()

    result = deliverer.drain(incident_id=incident_id, now=t0)

    assert result.problems == []
    assert len(fake_slack.calls_to("chat.update")) == 2
    _card, update, reply = deliveries(sessions, incident_id)
    assert update.last_error == "ratelimited" and update.failed_at is None
    # Retry-After: 0 still waits a second: Slack's limits are per second.
    assert update.next_attempt_at == t0 + timedelta(seconds=1)
    assert reply.attempts == 0

    result = deliverer.drain(incident_id=incident_id, now=t0 + timedelta(seconds=1))

    assert result.problems == []
    texts = replies(fake_slack, CHANNEL, ts)
    assert len(texts) == 1 and "marker-one" in texts[0]


def test_rows_not_yet_due_are_not_sent(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    incident_id = declare(sessions)
    deliverer = Deliverer(sessions, fake_slack.client())

    result = deliverer.drain(incident_id=incident_id, now=now() - timedelta(minutes=1))

    assert (result.delivered, result.problems) == (0, [])
    assert fake_slack.calls_to("chat.postMessage") == []
    [row] = deliveries(sessions, incident_id)
    assert row.attempts == 0 and row.delivered_at is None

    assert deliverer.drain(incident_id=incident_id).delivered == 1
    assert len(cards(fake_slack, CHANNEL)) == 1


# --- Permanent failures ------------------------------------------------------------------------


def test_a_card_that_can_never_be_posted_fails_and_later_rows_fail_as_card_missing(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    broken, error = "C0BROKEN01", "is_archived"
    fake_slack.add_channel(broken, "old-incidents", is_archived=True)
    doomed = declare(sessions, broken)
    set_status(sessions, doomed, "investigating")
    healthy = declare(sessions)
    set_status(sessions, healthy, "investigating")
    deliverer = Deliverer(sessions, fake_slack.client())
    t0 = now()

    result = deliverer.drain(now=t0)

    assert errors_of(result) == [(error, True), ("card_missing", True), ("card_missing", True)]
    rows = deliveries(sessions, doomed)
    assert [(r.action, r.last_error) for r in rows] == [
        (DeliveryAction.POST_CARD, error),
        (DeliveryAction.UPDATE_CARD, "card_missing"),
        (DeliveryAction.POST_THREAD, "card_missing"),
    ]
    assert all(r.failed_at == t0 and r.delivered_at is None for r in rows)
    assert stored_card_ts(sessions, doomed) is None
    assert f"INC-{doomed}" in result.problems[0].explain()
    # The other incident is not held up by the broken one.
    [card] = cards(fake_slack, CHANNEL)
    assert stored_card_ts(sessions, healthy) == card["ts"]
    assert len(replies(fake_slack, CHANNEL, card["ts"])) == 1
    assert pending(deliveries(sessions)) == []

    # A later change of the doomed incident fails at once instead of waiting forever.
    add_note(sessions, doomed, "marker-late")
    posts = len(fake_slack.calls_to("chat.postMessage"))
    result = deliverer.drain(incident_id=doomed)
    assert errors_of(result) == [("card_missing", True), ("card_missing", True)]
    assert pending(deliveries(sessions, doomed)) == []
    assert len(fake_slack.calls_to("chat.postMessage")) == posts


def test_a_channel_the_bot_cant_see_keeps_the_update_and_says_it_is_the_channel(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """channel_not_found is a private channel without the bot (or a deleted one): not a card
    that is missing. The rows are kept; once the bot is let in, they go out."""
    sessions = committing_sessions
    hidden = "G0HIDDEN01"
    fake_slack.remove_channel(hidden)
    incident_id = declare(sessions, hidden)
    set_status(sessions, incident_id, "investigating")
    deliverer = Deliverer(sessions, fake_slack.client())
    t0 = now()

    result = deliverer.drain(now=t0)

    assert errors_of(result) == [("channel_not_found", False)]
    explained = result.problems[0].explain()
    assert "can't see the channel" in explained and "card" not in explained
    rows = deliveries(sessions, incident_id)
    assert [r.failed_at for r in rows] == [None, None, None], "nothing is given up"
    assert rows[0].next_attempt_at >= t0 + timedelta(minutes=5)

    fake_slack.add_channel(hidden, "incident-private", is_private=True)
    assert deliverer.channel_joined(hidden, now=t0 + timedelta(seconds=1)) == 1
    result = deliverer.drain(now=t0 + timedelta(seconds=1))

    assert (result.delivered, result.problems) == (3, [])
    [card] = cards(fake_slack, hidden)
    assert len(replies(fake_slack, hidden, card["ts"])) == 1


# --- The bot is not in the channel -------------------------------------------------------------


def test_not_in_a_public_channel_the_bot_joins_and_posts_the_card(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    public = "C0PUBLIC01"
    fake_slack.add_channel(public, "payments", is_member=False)
    incident_id = declare(sessions, public)

    result = Deliverer(sessions, fake_slack.client()).drain(incident_id=incident_id)

    assert (result.delivered, result.problems) == (1, [])
    assert [c.method for c in fake_slack.calls] == [
        "chat.postMessage",
        "conversations.join",
        "chat.postMessage",
    ]
    assert fake_slack.channel(public)["is_member"] is True
    [card] = cards(fake_slack, public)
    assert stored_card_ts(sessions, incident_id) == card["ts"]


def test_a_reply_in_a_public_channel_the_bot_was_removed_from_joins_and_posts(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    # Someone removed the bot from the (public) channel after the card went up.
    fake_slack.add_channel(CHANNEL, defaults.CHANNEL_NAME, is_member=False)
    add_note(sessions, incident_id, "marker-one")

    result = Deliverer(sessions, fake_slack.client()).drain(incident_id=incident_id)

    assert errors_of(result) == []
    assert "conversations.join" in [c.method for c in fake_slack.calls]
    texts = replies(fake_slack, CHANNEL, ts)
    assert len(texts) == 1 and "marker-one" in texts[0]


def test_not_in_a_private_channel_the_card_waits_for_an_invite_and_the_user_is_told(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    private = "G0PRIVATE1"
    fake_slack.add_channel(private, "security-war-room", is_private=True, is_member=False)
    incident_id = declare(sessions, private)
    deliverer = Deliverer(sessions, fake_slack.client())
    t0 = now()

    result = deliverer.drain(incident_id=incident_id, now=t0)

    assert result.delivered == 0
    assert cards(fake_slack, private) == []
    [problem] = result.problems
    [row] = deliveries(sessions, incident_id)
    assert (row.delivered_at, row.failed_at) == (None, None), "the card must be kept"
    assert "/invite" in problem.explain(), problem.explain()
    assert problem.needs_action and not problem.permanent
    assert (problem.error, row.last_error) == ("not_in_channel", "not_in_channel")
    assert row.next_attempt_at == t0 + ACTION_NEEDED_BACKOFF

    fake_slack.add_channel(private, "security-war-room", is_private=True, is_member=True)
    result = deliverer.drain(incident_id=incident_id, now=t0 + ACTION_NEEDED_BACKOFF)

    assert (result.delivered, result.problems) == (1, [])
    [card] = cards(fake_slack, private)
    assert stored_card_ts(sessions, incident_id) == card["ts"]


# --- Deleting an incident ----------------------------------------------------------------------


def test_deleting_an_incident_deletes_its_card_and_posts_nothing_more_about_it(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-one")
    deliverer = Deliverer(sessions, fake_slack.client())
    fake_slack.fail("chat.postMessage", status=500, times=1)
    assert errors_of(deliverer.drain(incident_id=incident_id)) == [("internal_error", False)]

    delete(sessions, incident_id)
    result = deliverer.drain(now=now() + LATER)

    assert result.problems == []
    assert fake_slack.calls_to("chat.delete") == [{"channel": CHANNEL, "ts": ts}]
    assert fake_slack.message(CHANNEL, ts) is None
    assert replies(fake_slack, CHANNEL, ts) == [], "no reply about a deleted incident"
    rows = deliveries(sessions)
    assert pending(rows) == []
    [delete_row] = [r for r in rows if r.action == DeliveryAction.DELETE_CARD]
    assert delete_row.delivered_at is not None and delete_row.failed_at is None


def test_deleting_an_incident_whose_card_is_already_gone_counts_as_done(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    fake_slack.client().chat_delete(channel=CHANNEL, ts=ts)  # someone deleted it in Slack
    delete(sessions, incident_id)

    result = Deliverer(sessions, fake_slack.client()).drain()

    assert (result.delivered, result.problems) == (1, [])
    assert len(fake_slack.calls_to("chat.delete")) == 2
    [row] = [r for r in deliveries(sessions) if r.action == DeliveryAction.DELETE_CARD]
    assert row.delivered_at is not None and row.failed_at is None


# --- Concurrency -------------------------------------------------------------------------------


def test_two_workers_draining_the_same_rows_at_once_never_send_one_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    first, first_ts = with_card(sessions, fake_slack)
    second, second_ts = with_card(sessions, fake_slack)
    notes = {first: [f"marker-a{i}" for i in range(4)], second: [f"marker-b{i}" for i in range(4)]}
    for incident_id, texts in notes.items():
        for note in texts:
            add_note(sessions, incident_id, note)
    total = len(pending(deliveries(sessions)))
    # Every call is held a little, so each claimed row stays locked while the other worker looks.
    fake_slack.delay(["chat.postMessage", "chat.update"], 0.05)
    barrier = threading.Barrier(2)
    delivered: list[int] = []
    failures: list[BaseException] = []

    def worker(incident_id: int | None) -> None:
        deliverer = Deliverer(sessions, fake_slack.client())
        try:
            barrier.wait(timeout=5)
            deadline = time.monotonic() + 10
            while pending(deliveries(sessions, incident_id)) and time.monotonic() < deadline:
                result = deliverer.drain(incident_id=incident_id)
                assert result.problems == []
                delivered.append(result.delivered)
        except BaseException as error:
            failures.append(error)

    for target in (first, None):  # one worker on one incident, one on all: they overlap
        threads = [threading.Thread(target=worker, args=(target,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        if target == first:
            assert pending(deliveries(sessions, first)) == []

    assert failures == []
    assert pending(deliveries(sessions)) == []
    assert sum(delivered) == total, "each row must be counted as sent exactly once"
    for incident_id, ts in ((first, first_ts), (second, second_ts)):
        texts = replies(fake_slack, CHANNEL, ts)
        for note in notes[incident_id]:
            assert sum(note in t for t in texts) == 1, f"{note} must be posted exactly once"
        assert [n for t in texts for n in notes[incident_id] if n in t] == notes[incident_id]
    assert len(cards(fake_slack, CHANNEL)) == 2


def test_a_change_committed_while_the_card_is_being_posted_keeps_the_card(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare(sessions)
    # Someone acts after Slack took the card and before its answer reached the bot.
    fake_slack.after_call(
        "chat.postMessage", lambda *_: set_status(sessions, incident_id, "investigating")
    )

    result = Deliverer(sessions, fake_slack.client()).drain(incident_id=incident_id)

    assert result.problems == []
    [card] = cards(fake_slack, CHANNEL)
    assert stored_card_ts(sessions, incident_id) == card["ts"]
    with sessions() as session:
        assert session.get(Incident, incident_id).status == Status.INVESTIGATING
    texts = replies(fake_slack, CHANNEL, card["ts"])
    assert len(texts) == 1 and "investigating" in texts[0]


# --- Through the bot ---------------------------------------------------------------------------


def told(fake: FakeSlack, user_id: str = defaults.USER_ID) -> list[str]:
    """What the bot told `user_id` privately: ephemeral messages and DMs."""
    ephemeral = [e["text"] for e in fake.ephemeral_messages(user=user_id)]
    return ephemeral + [m["text"] for m in fake.messages(user_id)]


def inject(fake: FakeSlack, method: str, fault: str) -> None:
    if fault == "500":
        fake.fail(method, status=500, times=None)
    else:
        fake.fail(method, error=fault, times=None)


def listener_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith(("bot", "slack_bolt"))
    ]


@pytest.mark.parametrize(
    ("method", "fault"),
    [
        ("chat.update", "500"),
        ("chat.update", "not_in_channel"),
        ("chat.postMessage", "500"),
        ("chat.postMessage", "not_in_channel"),
    ],
)
def test_bot_keeps_the_change_and_explains_when_slack_refuses_the_update(
    slackbot: Bot, caplog: pytest.LogCaptureFixture, method: str, fault: str
):
    caplog.set_level(logging.WARNING)
    fake, sessions = slackbot.fake, slackbot.sessions
    incident_id, ts = with_card(sessions, fake)
    inject(fake, method, fault)

    status, _headers, _body = slackbot.command(f"status {incident_id} mitigated")

    assert status == 200
    messages = fake.wait_for(lambda: told(fake))
    with sessions() as session:
        incident = session.get(Incident, incident_id)
        assert incident is not None and incident.status == Status.MITIGATED
    kept = pending(deliveries(sessions, incident_id))
    assert kept and kept[0].last_error, "the undelivered update must be kept with its error"
    text = "\n".join(messages)
    assert f"INC-{incident_id}" in text
    if fault == "not_in_channel":
        assert "/invite" in text
    elif (method, fault) == ("chat.postMessage", "500"):
        # A post answered 5xx may have been stored: it is looked up, not called failed.
        assert "checking whether it arrived" in text and "didn't take" not in text
    else:
        assert "retried" in text
    assert listener_errors(caplog) == []
    assert "refused a step" not in text and "went wrong" not in text
    assert replies(fake, CHANNEL, ts) == [], "the reply must not overtake what failed"


@pytest.mark.parametrize("fault", ["500", "not_in_channel"])
def test_bot_show_mentions_the_update_slack_did_not_take(slackbot: Bot, fault: str):
    fake, sessions = slackbot.fake, slackbot.sessions
    incident_id, _ts = with_card(sessions, fake)
    inject(fake, "chat.update", fault)
    slackbot.command(f"status {incident_id} mitigated")
    fake.wait_for(lambda: told(fake))
    assert pending(deliveries(sessions, incident_id)), "the update must still be undelivered"
    before = len(slackbot.responses())

    status, _headers, _body = slackbot.command(f"show {incident_id}")

    assert status == 200
    shown = fake.wait_for(lambda: slackbot.responses()[before:])
    rendered = json.dumps(shown[-1], ensure_ascii=False)
    assert f"INC-{incident_id}" in rendered
    assert "Not delivered" in rendered, "show must mention the update Slack did not take"

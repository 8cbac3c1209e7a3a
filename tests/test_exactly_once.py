"""Exactly once in Slack, and the most severe incident first.

Each post carries metadata tagged with its outbox row. When Slack takes a post but its answer
never arrives (a late answer, a dropped connection), the row keeps its "sending" mark and the next
attempt finds the message by its tag instead of posting it again. Across incidents the outbox
sends the most severe first; one channel's rate limit holds up nothing else.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

from sqlalchemy import select

from bot.delivery import TAG_EVENT_TYPE, Deliverer
from bot.slack.app import make_client
from db.models import Delivery, DeliveryAction
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import bot_settings
from tests.test_delivery import (
    CHANNEL,
    Sessions,
    add_note,
    cards,
    declare,
    deliveries,
    now,
    set_severity,
    stored_card_ts,
    with_card,
)
from tests.test_run import bot_process, free_port, stop, wait_until_healthy

GRACE = timedelta(seconds=5)  # Slack may list a fresh post this late (the design's figure)
OTHER = "C0OTHER0001"


def thread(fake: FakeSlack, ts: str) -> list[dict]:
    return fake.thread(CHANNEL, ts)


def post_channels(fake: FakeSlack) -> list[str]:
    """The channel of each chat.postMessage Slack accepted or refused, in order."""
    return [c["channel"] for c in fake.calls_to("chat.postMessage")]


# --- The outcome of a post is unknown ----------------------------------------------------------


def test_a_reply_slack_answers_too_late_is_found_by_its_tag_not_posted_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-late")
    deliverer = Deliverer(sessions, fake_slack.client(timeout=0.5))
    fake_slack.answer_late("chat.postMessage", 2.0)
    fake_slack.visibility_delay = 0.2  # the reply shows up in reads a moment after it is taken
    t0 = now()

    first = deliverer.drain(incident_id=incident_id, now=t0)

    assert [p.error.startswith("connection") for p in first.problems] == [True]
    # The person who made the change is not told it failed: it may well have arrived.
    told = first.problems[0].explain()
    assert "checking whether it arrived" in told and "didn't take" not in told
    reply = next(r for r in deliveries(sessions, incident_id) if r.action.value == "post_thread")
    assert reply.sending_since == t0 and reply.delivered_at is None
    [posted] = thread(fake_slack, ts)
    assert posted["metadata"]["event_type"] == TAG_EVENT_TYPE

    # Before Slack can be trusted to list it, the reply is not looked for, nor posted again.
    calls = len(fake_slack.calls)
    early = deliverer.drain(incident_id=incident_id, now=t0 + GRACE - timedelta(seconds=1))
    assert (early.delivered, early.problems) == (0, [])
    assert len(fake_slack.calls) == calls

    later = deliverer.drain(incident_id=incident_id, now=t0 + GRACE + timedelta(seconds=1))

    assert (later.delivered, later.found, later.problems) == (1, 1, [])
    assert [m["text"] for m in thread(fake_slack, ts)] == [posted["text"]]
    assert len(fake_slack.calls_to("chat.postMessage")) == 2  # the card, and the reply once
    replies_read = fake_slack.calls_to("conversations.replies")
    assert replies_read and all(
        c["include_all_metadata"] in (True, "true", "1") for c in replies_read
    )
    [done] = [r for r in deliveries(sessions, incident_id) if r.id == reply.id]
    assert (done.slack_ts, done.sending_since) == (posted["ts"], None)


def test_a_card_whose_connection_dropped_after_slack_took_it_is_found_not_posted_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """The bot's own client (retries on a dropped connection) must not repeat a post."""
    sessions = committing_sessions
    incident_id = declare(sessions)
    deliverer = Deliverer(sessions, make_client(bot_settings(fake_slack)))
    fake_slack.drop_after("chat.postMessage")
    t0 = now()

    first = deliverer.drain(incident_id=incident_id, now=t0)

    assert len(first.problems) == 1 and first.delivered == 0
    assert len(cards(fake_slack, CHANNEL)) == 1, "the client retried the post itself"
    assert stored_card_ts(sessions, incident_id) is None

    later = deliverer.drain(incident_id=incident_id, now=t0 + GRACE + timedelta(seconds=1))

    assert later.problems == [] and later.found == 1
    [card] = cards(fake_slack, CHANNEL)
    assert stored_card_ts(sessions, incident_id) == card["ts"]
    assert fake_slack.calls_to("conversations.history"), "the card was looked for in the channel"


def test_a_post_that_is_not_in_slack_after_all_is_posted_again(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """Unknown is not 'sent': a post that never reached Slack goes out on the next attempt."""
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    add_note(sessions, incident_id, "marker-lost")
    deliverer = Deliverer(sessions, fake_slack.client(timeout=0.5))
    # Held past the client's timeout, then refused: Slack never kept it.
    fake_slack.delay("chat.postMessage", 2.0, times=1)
    fake_slack.fail("chat.postMessage", status=500, times=1)
    t0 = now()

    deliverer.drain(incident_id=incident_id, now=t0)
    fake_slack.wait_for_call("chat.postMessage", count=2, timeout=5)
    assert thread(fake_slack, ts) == []
    result = deliverer.drain(incident_id=incident_id, now=t0 + GRACE + timedelta(seconds=1))

    assert (result.delivered, result.found, result.problems) == (1, 0, [])
    [reply] = thread(fake_slack, ts)
    assert "marker-lost" in reply["text"]


def test_a_crash_between_the_mark_and_the_post_is_looked_up_once_the_lease_ends(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """A row marked "sending" by a worker that died is left alone until its lease ends."""
    sessions = committing_sessions
    incident_id = declare(sessions)
    deliverer = Deliverer(sessions, fake_slack.client())
    t0 = now()
    with sessions.begin() as session:  # what a worker commits just before it posts, then dies
        row = session.scalars(select(Delivery).where(Delivery.incident_id == incident_id)).one()
        row.sending_since, row.lease_until = t0, t0 + deliverer.lease

    during = deliverer.drain(now=t0 + deliverer.lease - timedelta(seconds=1))
    assert (during.delivered, len(fake_slack.calls_to("chat.postMessage"))) == (0, 0)

    after = deliverer.drain(now=t0 + deliverer.lease + timedelta(seconds=1))

    assert (after.delivered, after.found, after.problems) == (1, 0, [])
    assert fake_slack.calls_to("conversations.history"), "looked before posting"
    assert len(cards(fake_slack, CHANNEL)) == 1


# --- SEV1 first, and fair across channels ------------------------------------------------------


def test_a_sev1_card_goes_out_before_older_lower_severity_work(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    minor = [declare(sessions, severity="SEV4") for _ in range(4)]
    major = declare(sessions, severity="SEV1")
    medium = declare(sessions, severity="SEV2")

    Deliverer(sessions, fake_slack.client()).drain()

    order = [stored_card_ts(sessions, i) for i in (major, medium, *minor)]
    assert [c["ts"] for c in cards(fake_slack, CHANNEL)] == order


def test_an_incident_raised_to_sev1_moves_its_queued_updates_up_in_order(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    quiet = declare(sessions, severity="SEV4")
    raised = declare(sessions, severity="SEV4")
    add_note(sessions, raised, "marker-raised")
    set_severity(sessions, raised, "SEV1")

    Deliverer(sessions, fake_slack.client()).drain()

    first_card, second_card = cards(fake_slack, CHANNEL)
    assert first_card["ts"] == stored_card_ts(sessions, raised)
    assert second_card["ts"] == stored_card_ts(sessions, quiet)
    # Within the raised incident the order stays strict: card, note, severity change.
    texts = [m["text"] for m in fake_slack.thread(CHANNEL, first_card["ts"])]
    assert "marker-raised" in texts[0] and "SEV1" in texts[1]


def test_one_channels_rate_limit_holds_up_only_that_channel(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_channel(OTHER, "other-incidents")
    fake_slack.rate_limit_posts(per_channel_per_second=0.01)  # one post, then 100 s to wait
    first = declare(sessions, severity="SEV3")
    waiting = declare(sessions, severity="SEV3")
    elsewhere = declare(sessions, OTHER, severity="SEV3")
    deliverer = Deliverer(sessions, fake_slack.client())
    t0 = now()

    result = deliverer.drain(now=t0)

    assert result.problems == [], "a rate limit is a wait, not a failure"
    assert post_channels(fake_slack) == [CHANNEL, CHANNEL, OTHER]
    assert stored_card_ts(sessions, first) and stored_card_ts(sessions, elsewhere)
    [held] = deliveries(sessions, waiting)
    assert held.last_error == "ratelimited" and held.attempts == 0
    assert held.next_attempt_at >= t0 + timedelta(seconds=99)

    # While the channel waits, even a SEV1 card there is not tried (Slack would refuse it).
    sev1 = declare(sessions, severity="SEV1")
    deliverer.drain(now=t0 + timedelta(seconds=1))
    assert len(post_channels(fake_slack)) == 3

    # When the wait is over, the SEV1 card declared last goes first.
    fake_slack.clear_rate_limits()
    deliverer.drain(now=t0 + timedelta(seconds=101))
    assert post_channels(fake_slack)[3:] == [CHANNEL, CHANNEL]
    assert [c["ts"] for c in cards(fake_slack, CHANNEL)][1:] == [
        stored_card_ts(sessions, sev1),
        stored_card_ts(sessions, waiting),
    ]
    assert all(r.delivered_at for r in deliveries(sessions))


def test_rate_limits_are_kept_per_method_and_channel(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    """chat.update keeps going in a channel where chat.postMessage must wait."""
    sessions = committing_sessions
    incident_id, _ = with_card(sessions, fake_slack)
    fake_slack.rate_limit_posts(per_channel_per_second=0.01)
    fake_slack.client().chat_postMessage(channel=CHANNEL, text="uses the channel's one post")
    fake_slack.clear_calls()
    add_note(sessions, incident_id, "marker-held")

    Deliverer(sessions, fake_slack.client()).drain(incident_id=incident_id)

    assert [c.method for c in fake_slack.calls][:2] == ["chat.update", "chat.postMessage"]
    held = [r for r in deliveries(sessions, incident_id) if r.action == DeliveryAction.POST_THREAD]
    assert [r.last_error for r in held] == ["ratelimited"]


# --- A bot killed between Slack's answer and its commit ----------------------------------------


def test_a_bot_killed_after_slack_took_the_card_finds_it_on_restart_and_posts_nothing_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions, database_url: str
):
    sessions = committing_sessions
    incident_id = declare(sessions, severity="SEV1")
    running: dict[str, int] = {}
    # SIGKILL once Slack has stored the card, before the bot can read Slack's answer.
    fake_slack.after_call("chat.postMessage", lambda *_: os.kill(running["pid"], signal.SIGKILL))
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_TIMEOUT": "1",  # a post's lease: 1 s plus 5 s
    }

    with bot_process(**env, PORT=str(free_port())) as first:
        running["pid"] = first.pid
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    [card] = cards(fake_slack, CHANNEL)
    [row] = deliveries(sessions, incident_id)
    assert row.sending_since is not None and row.delivered_at is None
    assert stored_card_ts(sessions, incident_id) is None

    port = free_port()
    with bot_process(**env, PORT=str(port)) as second:
        wait_until_healthy(second, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while deliveries(sessions, incident_id)[0].delivered_at is None:
            assert time.monotonic() < deadline, "the restarted bot never settled the card"
            time.sleep(0.1)
        stop(second)

    assert [c["ts"] for c in cards(fake_slack, CHANNEL)] == [card["ts"]]
    assert stored_card_ts(sessions, incident_id) == card["ts"]
    assert deliveries(sessions, incident_id)[0].slack_ts == card["ts"]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1

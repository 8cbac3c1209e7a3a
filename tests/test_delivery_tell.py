"""What a person is told after the ack is an outbox row (bot.delivery.tell).

A refusal or confirmation told after a button's ack survives a crash right after the ack. An
ephemeral message or a response_url answer lives 30 minutes and is dropped, logged, after
that; a DM is tagged and looked up when its answer is lost; a person Slack says is gone is
given up on at once. Each person is their own place: what they are told waits for nothing of
an incident's card, and holds up nothing of it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from datetime import timedelta

import pytest

from bot.delivery import TAG_EVENT_TYPE, Deliverer, Recipient, queue_tell
from db.models import Delivery, DeliveryAction
from tests.fakeslack import FakeSlack, SlackError, defaults, payloads, post_payload
from tests.test_delivery import (
    CHANNEL,
    Sessions,
    add_note,
    deliveries,
    now,
    pending,
    with_card,
)
from tests.test_run import bot_process, free_port, stop, wait_until_healthy

USER = defaults.USER_ID
GRACE = timedelta(seconds=5)  # Slack may list a fresh post this late (the design's figure)


def tell(
    sessions: Sessions, to: Recipient, text: str, incident_id: int | None = None, **kwargs
) -> int:
    with sessions.begin() as session:
        return queue_tell(session, to, text, incident_id=incident_id, **kwargs).id


def row(sessions: Sessions, delivery_id: int) -> Delivery:
    [found] = [r for r in deliveries(sessions) if r.id == delivery_id]
    return found


def ephemerals(fake: FakeSlack, user: str = USER) -> list[str]:
    return [e["text"] for e in fake.ephemeral_messages(user=user)]


def refused_click(incident_id: int, fake: FakeSlack) -> dict:
    """A status button of an incident that does not exist: refused, and nothing is saved."""
    value = json.dumps({"id": incident_id, "status": "open"})
    act = payloads.action("incident_status:investigating", block_id="card_actions", value=value)
    return payloads.block_actions(act, channel_id=CHANNEL, fake=fake)


# --- After the ack ------------------------------------------------------------------------------


def test_a_refusal_told_after_a_buttons_ack_is_an_outbox_row_and_is_delivered(slackbot):
    status, _, _ = slackbot.post(refused_click(404, slackbot.fake))

    assert status == 200
    slackbot.fake.wait_for(lambda: ephemerals(slackbot.fake))
    assert ephemerals(slackbot.fake) == ["There is no incident INC-404."]
    [told] = deliveries(slackbot.sessions)
    assert told.action == DeliveryAction.TELL_USER
    assert (told.payload["user"], told.payload["channel"]) == (USER, CHANNEL)
    slackbot.fake.wait_for(lambda: row(slackbot.sessions, told.id).delivered_at is not None)


def test_a_bot_killed_right_after_the_ack_still_tells_the_person_when_restarted(
    fake_slack: FakeSlack, committing_sessions: Sessions, database_url: str
):
    sessions = committing_sessions
    running: dict[str, int] = {}

    def killed(params: dict) -> dict:
        os.kill(running["pid"], signal.SIGKILL)
        raise SlackError("internal_error")

    # The bot dies as it starts telling the person: after the ack, before Slack showed anything.
    fake_slack.set_handler("chat.postEphemeral", killed)
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "SLACK_TIMEOUT": "1",  # a call's lease: 1 s plus 5 s
    }
    port = free_port()
    with bot_process(**env, PORT=str(port)) as first:
        running["pid"] = first.pid
        wait_until_healthy(first, f"http://127.0.0.1:{port}")
        status, _, _ = post_payload(
            f"http://127.0.0.1:{port}/slack/events", refused_click(404, fake_slack)
        )
        assert status == 200
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert ephemerals(fake_slack) == []
    [told] = deliveries(sessions)
    assert told.action == DeliveryAction.TELL_USER and told.delivered_at is None

    fake_slack.set_handler("chat.postEphemeral", None)
    port = free_port()
    with bot_process(**env, PORT=str(port)) as second:
        wait_until_healthy(second, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while row(sessions, told.id).delivered_at is None:
            assert time.monotonic() < deadline, "the restarted bot never told the person"
            time.sleep(0.1)
        stop(second)
    assert ephemerals(fake_slack) == ["There is no incident INC-404."]


# --- Time to live -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["ephemeral", "response_url"])
def test_a_row_past_its_time_to_live_is_dropped_and_logged_not_sent(
    fake_slack: FakeSlack,
    committing_sessions: Sessions,
    caplog: pytest.LogCaptureFixture,
    where: str,
):
    sessions = committing_sessions
    url = fake_slack.new_response_url("actions") if where == "response_url" else None
    to = Recipient(USER, CHANNEL, url)
    late = tell(sessions, to, "Too late", now=now() - timedelta(minutes=31))
    fresh = tell(sessions, to, "In time", now=now() - timedelta(minutes=29))

    with caplog.at_level(logging.INFO, logger="bot.delivery"):
        result = Deliverer(sessions, fake_slack.client()).drain()

    assert result.problems == []  # a person's message is logged, never told in turn
    dropped, sent = row(sessions, late), row(sessions, fresh)
    assert (dropped.failed_at is not None, dropped.last_error) == (True, "expired")
    assert dropped.delivered_at is None and dropped.attempts == 0
    assert sent.delivered_at is not None
    shown = ephemerals(fake_slack) if url is None else [r["text"] for r in fake_slack.responses()]
    assert shown == ["In time"]
    [line] = [r for r in caplog.records if "expired" in r.getMessage()]
    assert line.levelno == logging.INFO and f"delivery {late} " in line.getMessage()
    assert USER in line.getMessage()
    assert url is None or url not in caplog.text  # a response_url is a secret for 30 minutes


def test_a_dm_has_no_time_to_live(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    told = tell(sessions, Recipient(USER), "Hours later", now=now() - timedelta(hours=3))

    assert Deliverer(sessions, fake_slack.client()).drain().delivered == 1
    assert [m["text"] for m in fake_slack.messages(fake_slack.dm_channel(USER))] == ["Hours later"]
    assert row(sessions, told).delivered_at is not None


# --- DMs ----------------------------------------------------------------------------------------


def test_a_dm_whose_answer_is_lost_is_looked_up_in_the_dm_and_not_sent_twice(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    told = tell(sessions, Recipient(USER), "Your update is kept")
    deliverer = Deliverer(sessions, fake_slack.client(timeout=0.5))
    fake_slack.answer_late("chat.postMessage", 2.0)
    t0 = now()

    first = deliverer.drain(now=t0)

    assert (first.delivered, first.problems) == (0, [])
    assert row(sessions, told).sending_since == t0
    dm = fake_slack.dm_channel(USER)
    [posted] = fake_slack.messages(dm)
    assert posted["metadata"]["event_payload"] == {"delivery_id": told}

    later = deliverer.drain(now=t0 + GRACE + timedelta(seconds=1))

    assert (later.delivered, later.found) == (1, 1)
    assert [m["ts"] for m in fake_slack.messages(dm)] == [posted["ts"]]
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    looked = fake_slack.calls_to("conversations.history")
    assert [c["channel"] for c in looked] == [dm]
    assert row(sessions, told).slack_ts == posted["ts"]
    assert posted["metadata"]["event_type"] == TAG_EVENT_TYPE


@pytest.mark.parametrize(
    ("person", "error"),
    [("deactivated", "account_inactive"), ("unknown", "user_not_found")],
)
def test_a_dm_to_a_person_slack_says_is_gone_is_given_up_at_once(
    fake_slack: FakeSlack, committing_sessions: Sessions, person: str, error: str
):
    sessions = committing_sessions
    user = "U0GONE0001"
    if person == "deactivated":
        fake_slack.add_user(user, "gone", deleted=True)
    told = tell(sessions, Recipient(user), "Noted")

    result = Deliverer(sessions, fake_slack.client()).drain()

    assert result.problems == []
    given_up = row(sessions, told)
    assert (given_up.failed_at is not None, given_up.attempts) == (True, 1)
    assert given_up.last_error == error


def test_account_inactive_from_opening_the_dm_is_the_bots_token_and_is_retried(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.fail("conversations.open", error="account_inactive")
    told = tell(sessions, Recipient(USER), "Noted")

    Deliverer(sessions, fake_slack.client()).drain()

    waiting = row(sessions, told)
    assert waiting.failed_at is None and waiting.last_error == "account_inactive"
    assert waiting.next_attempt_at > now()


def test_an_ephemeral_slack_cant_show_in_that_channel_becomes_a_dm(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.add_channel("C0ELSE0001", "elsewhere", members=[defaults.BOT_USER_ID])
    told = tell(sessions, Recipient(USER, "C0ELSE0001"), "Saved")

    Deliverer(sessions, fake_slack.client()).drain()

    assert ephemerals(fake_slack) == []
    assert [m["text"] for m in fake_slack.messages(fake_slack.dm_channel(USER))] == ["Saved"]
    done = row(sessions, told)
    assert done.delivered_at is not None and "expires_at" not in done.payload


# --- Each person is their own place -------------------------------------------------------------


def test_a_tell_row_does_not_wait_behind_a_failing_card_row(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, _ = with_card(sessions, fake_slack)
    # Refused until a person acts: Slack answering the tell row does not make it due again.
    fake_slack.fail("chat.postMessage", error="restricted_action", channel=CHANNEL, times=None)
    add_note(sessions, incident_id, "refused by Slack")
    deliverer = Deliverer(sessions, fake_slack.client())
    assert [p.error for p in deliverer.drain(incident_id=incident_id).problems] == [
        "restricted_action"
    ]

    told = tell(sessions, Recipient(USER, CHANNEL), "Note added", incident_id=incident_id)
    result = deliverer.drain(incident_id=incident_id, now=now())

    assert ephemerals(fake_slack) == ["Note added"]
    assert row(sessions, told).delivered_at is not None
    assert [r.action for r in pending(deliveries(sessions, incident_id))] == [
        DeliveryAction.POST_THREAD
    ]
    assert result.problems == []  # the thread reply is still in its back-off


def test_a_failing_tell_row_holds_up_no_card_row_but_the_same_persons_later_ones(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, ts = with_card(sessions, fake_slack)
    fake_slack.fail("chat.postEphemeral", error="restricted_action", times=None)
    first = tell(sessions, Recipient(USER, CHANNEL), "first", incident_id=incident_id)
    add_note(sessions, incident_id, "goes out anyway")
    second = tell(sessions, Recipient(USER, CHANNEL), "second")
    fake_slack.add_user("U0OTHER001", "other")
    other = tell(sessions, Recipient("U0OTHER001"), "someone else")
    deliverer = Deliverer(sessions, fake_slack.client())

    deliverer.drain()

    assert any("goes out anyway" in m["text"] for m in fake_slack.thread(CHANNEL, ts))
    assert row(sessions, other).delivered_at is not None
    assert row(sessions, first).attempts == 1
    assert row(sessions, second).attempts == 0  # in order, behind the first

    fake_slack.clear_faults()
    deliverer.drain(now=now() + timedelta(minutes=6))
    assert ephemerals(fake_slack) == ["first", "second"]

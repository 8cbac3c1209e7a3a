"""The bot recovers on its own: an event whose handling failed is tried again, a redelivered event
is acted on once (its whole id counts), and updates that waited for the bot to be let into a
channel go out as soon as it is.

Slack is the loopback fake with its fault injection; events are signed HTTP requests to the real
bot. Waits are on the fake or on the database, with deadlines, never blind sleeps.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Delivery, DeliveryAction, ProcessedEvent
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.test_delivery import cards, listener_errors
from tests.test_slack_interactions import declare, load

USER = defaults.USER_ID
BOB = "U0BOB000001"
CHANNEL = defaults.CHANNEL_ID
PRIVATE = "G0WARROOM01"
# How soon the bot tries a failed event's handling again (EVENT_RETRIES[0]), written out here.
FIRST_EVENT_RETRY = 2.0
# What the outbox waits before retrying a post that needs a person (the bot invited).
ACTION_NEEDED_BACKOFF = timedelta(minutes=5)


def home_opened(user_id: str = USER, event_id: str | None = None) -> dict[str, Any]:
    return payloads.event_callback(payloads.app_home_opened_event(user_id), event_id=event_id)


def published_for(fake: FakeSlack) -> list[str]:
    return [p["user_id"] for p in fake.calls_to("views.publish")]


def remembered(engine: Engine, event_ids: list[str]) -> list[str]:
    with sessionmaker(engine)() as session:
        return list(
            session.scalars(
                select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(event_ids))
            )
        )


# --- An event's handling is tried again --------------------------------------------------------


def test_an_event_whose_handling_fails_is_tried_again_by_the_bot(slackbot: Bot):
    fake = slackbot.fake
    # The client retries a 5xx once by itself: two failures make the first handling fail.
    fault = fake.fail("views.publish", status=500, times=2)

    status, _, _ = slackbot.post(home_opened())

    assert status == 200
    fake.wait_for_call("views.publish", count=2)
    failed_at = time.monotonic()
    assert fault.hits == 2
    assert USER not in fake.home_views, "the first handling must have failed"
    # Only the bot's own retry, EVENT_RETRIES[0] later, makes a third call.
    fake.wait_for(lambda: USER in fake.home_views, timeout=10)
    retried_after = time.monotonic() - failed_at

    assert published_for(fake) == [USER, USER, USER]
    assert fake.home_views[USER]["type"] == "home"
    assert retried_after >= FIRST_EVENT_RETRY - 0.5, "a retry that soon is the client's, not ours"
    # A failure that was recovered from is not reported to the person.
    assert fake.calls_to("chat.postMessage") == []
    assert fake.calls_to("chat.postEphemeral") == []


# --- Event ids ---------------------------------------------------------------------------------


def test_event_ids_are_kept_whole_and_a_redelivery_is_handled_once(slackbot: Bot, engine: Engine):
    fake = slackbot.fake
    shared = "Ev" + uuid.uuid4().hex.upper() * 2  # 66 characters
    first_id, second_id = shared + "FIRST", shared + "SECOND"
    assert first_id[:64] == second_id[:64] and first_id != second_id

    assert slackbot.post(home_opened(event_id=first_id))[0] == 200
    fake.wait_for_call("views.publish", count=1)
    assert slackbot.post(home_opened(event_id=second_id))[0] == 200
    fake.wait_for_call("views.publish", count=2)

    # Slack redelivers the second one.
    redelivered = slackbot.post(
        home_opened(event_id=second_id), retry_num=1, retry_reason="http_timeout"
    )
    # A different event afterwards: once it is handled, a redelivery handled again would show.
    assert slackbot.post(home_opened(ADMIN_ID))[0] == 200
    fake.wait_for_call("views.publish", count=3)

    assert redelivered[0] == 200, "Slack must get a 200 so it stops redelivering"
    assert published_for(fake) == [USER, USER, ADMIN_ID]
    assert sorted(remembered(engine, [first_id, second_id])) == sorted([first_id, second_id])


# --- The bot let into a channel ----------------------------------------------------------------


@pytest.fixture
def private_channel_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """INCIDENT_CHANNEL is a private channel the bot is not in yet; the outbox worker runs."""
    fake_slack.add_channel(PRIVATE, "war-room", is_private=True, is_member=False)
    fake_slack.add_user(BOB, "bob")
    with running_bot(
        fake_slack, engine, committing_sessions, delivery_worker=True, incident_channel=PRIVATE
    ) as running:
        yield running


def card_row(bot: Bot, incident_id: int) -> Delivery:
    with bot.sessions() as session:
        return session.scalars(
            select(Delivery).where(
                Delivery.incident_id == incident_id,
                Delivery.action == DeliveryAction.POST_CARD,
            )
        ).one()


def tried_card_row(bot: Bot, incident_id: int) -> Delivery:
    """The card's row once an attempt is recorded: the listener or the outbox worker, whichever
    claimed it, records what Slack answered after the reporter may already have been told."""
    deadline = time.monotonic() + 5
    while (row := card_row(bot, incident_id)).attempts == 0 and row.delivered_at is None:
        assert time.monotonic() < deadline, "no attempt to post the card was recorded"
        time.sleep(0.01)
    return row


def member_joined(bot: Bot, user_id: str, channel: str = PRIVATE) -> None:
    """Slack's signed `member_joined_channel`; handled before its 200, so its effect is in."""
    status, _, body = bot.post(
        payloads.event_callback(payloads.member_joined_channel_event(user_id, channel=channel))
    )
    assert status == 200, body


def test_the_card_that_waited_for_an_invite_goes_out_when_the_bot_joins(
    private_channel_bot: Bot,
):
    bot, fake = private_channel_bot, private_channel_bot.fake
    before = datetime.now(UTC)
    incident_id = declare(bot, "Card access leaked", "SEV2")

    row = tried_card_row(bot, incident_id)
    assert (row.last_error, row.delivered_at, row.failed_at) == ("not_in_channel", None, None)
    assert row.next_attempt_at >= before + ACTION_NEEDED_BACKOFF - timedelta(seconds=1)
    assert cards(fake, PRIVATE) == []
    waiting_until, attempts = row.next_attempt_at, row.attempts

    # Someone invites the bot (the fake now lets it post), but the event is about another user.
    fake.add_channel(PRIVATE, "war-room", is_private=True, is_member=True)
    member_joined(bot, BOB)  # handled before the 200: its effect, if any, is committed
    member_joined(bot, fake.bot_user_id, channel=CHANNEL)  # the bot, but another channel

    row = card_row(bot, incident_id)
    assert (row.next_attempt_at, row.attempts, row.delivered_at) == (waiting_until, attempts, None)
    assert cards(fake, PRIVATE) == []

    # Now Slack says the bot itself joined the channel.
    member_joined(bot, fake.bot_user_id)

    [card] = fake.wait_for(lambda: cards(fake, PRIVATE), timeout=5)
    assert datetime.now(UTC) < waiting_until, "it must not have waited for the back-off"
    assert f"INC-{incident_id}" in card["text"]
    deadline = time.monotonic() + 5
    while load(bot, incident_id).card_ts != card["ts"]:  # recorded after Slack answered
        assert time.monotonic() < deadline, "the card's ts was not recorded"
        time.sleep(0.01)
    assert card_row(bot, incident_id).delivered_at is not None


# --- Messages the bot does not act on ----------------------------------------------------------


@pytest.fixture
def thread_files_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    with running_bot(fake_slack, engine, committing_sessions, attach_thread_files=True) as running:
        yield running


def plain_message() -> dict[str, Any]:
    return payloads.message_event("Anyone else seeing slow checkouts?", channel=CHANNEL)


def edited_message() -> dict[str, Any]:
    """Someone edits a message: Slack's `message_changed`, with no user at the top level."""
    original = payloads.message_event("Anyone else seeing slow checkout?", channel=CHANNEL)
    edited_at = f"{time.time():.6f}"
    return {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": CHANNEL,
        "channel_type": "channel",
        "message": {
            **original,
            "text": "Anyone else seeing slow checkouts?",
            "edited": {"user": USER, "ts": edited_at},
        },
        "previous_message": original,
        "ts": edited_at,
        "event_ts": edited_at,
    }


@pytest.mark.parametrize(
    "event", [plain_message, edited_message], ids=["plain message", "message_changed"]
)
def test_a_channel_message_is_acked_quietly_and_calls_nothing(
    thread_files_bot: Bot, caplog: pytest.LogCaptureFixture, event: Any
):
    caplog.set_level(logging.DEBUG)
    bot, fake = thread_files_bot, thread_files_bot.fake
    before = len(fake.calls)

    status, _, body = bot.post(payloads.event_callback(event()))
    # Work after an ack goes through the work queue in order: once a later event's work is
    # done, anything the message had set off would have started.
    assert bot.post(home_opened())[0] == 200
    fake.wait_for_call("views.publish")

    assert status == 200
    assert body.strip() in ("", "{}"), body
    assert [c.method for c in fake.calls[before:]] == ["views.publish"]
    assert listener_errors(caplog) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

"""The same app over Socket Mode: acks carry responses, and redelivered events act once."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import Deliverer
from bot.slack.app import create_app, make_client
from bot.work import WorkQueue
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import bot_settings


@pytest.fixture
def socket_fake() -> Iterator[FakeSlack]:
    with FakeSlack(socket_mode=True) as fake:
        yield fake


@pytest.fixture
def connected(socket_fake: FakeSlack, committing_sessions: sessionmaker[Session]) -> Iterator[None]:
    settings = bot_settings(
        socket_fake, slack_app_token=defaults.APP_TOKEN, slack_signing_secret=None
    )
    work = WorkQueue(settings.work_queue_limit)
    client = make_client(settings)
    deliverer = Deliverer(committing_sessions, client)
    app = create_app(settings, committing_sessions, client, work, deliverer)
    with socket_fake.socket_mode_app(app):
        yield
    work.shutdown()


def test_a_command_over_socket_mode_is_acked_and_answered(socket_fake: FakeSlack, connected: None):
    command = payloads.slash_command("/incident", "list", fake=socket_fake)
    envelope = socket_fake.socket_mode.send_envelope(None, command)
    assert socket_fake.socket_mode.wait_ack(envelope)["envelope_id"] == envelope
    answered = socket_fake.wait_for(lambda: socket_fake.responses(command["response_url"]))
    assert answered[0]["text"] == "0 incidents"


def test_a_bad_command_is_answered_in_the_ack(socket_fake: FakeSlack, connected: None):
    command = payloads.slash_command("/incident", "status INC-x resolved", fake=socket_fake)
    envelope = socket_fake.socket_mode.send_envelope(None, command)
    ack = socket_fake.socket_mode.wait_ack(envelope)
    assert ack["payload"]["text"] == "'INC-x' is not an incident id. Use INC-12, #12 or 12."


def test_a_redelivered_event_is_handled_once(
    socket_fake: FakeSlack, connected: None, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="bot.slack.listeners.events")
    event = payloads.event_callback(
        payloads.app_home_opened_event(defaults.USER_ID), event_id="Ev0SOCKET0001"
    )
    socket_fake.socket_mode.wait_ack(socket_fake.socket_mode.send_envelope("events_api", event))
    socket_fake.wait_for_call("views.publish")
    again = socket_fake.socket_mode.send_envelope(
        "events_api", event, retry_attempt=1, retry_reason="timeout"
    )
    socket_fake.socket_mode.wait_ack(again)
    socket_fake.wait_for(lambda: "Ev0SOCKET0001 was already handled" in caplog.text)
    assert len(socket_fake.calls_to("views.publish")) == 1


def test_a_button_the_bot_does_not_handle_is_acked_without_a_word(
    socket_fake: FakeSlack, connected: None
):
    clicked = payloads.block_actions(
        payloads.action("some_link_button", block_id="b", value="x"), fake=socket_fake
    )
    envelope = socket_fake.socket_mode.send_envelope(None, clicked)
    assert socket_fake.socket_mode.wait_ack(envelope)["envelope_id"] == envelope
    command = payloads.slash_command("/incident", "list", fake=socket_fake)
    socket_fake.socket_mode.wait_ack(socket_fake.socket_mode.send_envelope(None, command))
    socket_fake.wait_for(lambda: socket_fake.responses(command["response_url"]))
    told = [c.method for c in socket_fake.calls if c.method.startswith("chat.")]
    assert told == []

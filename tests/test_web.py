"""HTTP mode's WSGI app: Slack's endpoint, signature checks and the health check."""

from __future__ import annotations

import urllib.error
import urllib.request

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import Deliverer
from bot.server import make_wsgi_app
from bot.slack.app import create_app, make_client
from bot.work import WorkQueue
from db.session import make_engine
from tests.fakeslack import FakeSlack, payloads
from tests.slackbot import Bot, bot_settings, serve_wsgi

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch(url: str, method: str = "GET", timeout: float = 5) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    try:
        with NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_healthz_is_ok_while_the_database_answers(slackbot: Bot):
    assert fetch(f"{slackbot.base_url}/healthz") == (200, "ok\n")


def test_healthz_is_503_when_the_database_does_not_answer(
    fake_slack: FakeSlack, committing_sessions: sessionmaker[Session]
):
    settings = bot_settings(fake_slack)
    work = WorkQueue(1)
    client = make_client(settings)
    deliverer = Deliverer(committing_sessions, client)
    app = create_app(settings, committing_sessions, client, work, deliverer)
    unreachable: Engine = make_engine("postgresql://postgres@127.0.0.1:1/nothing")
    with serve_wsgi(make_wsgi_app(app, unreachable, settings), settings) as base_url:
        assert fetch(f"{base_url}/healthz") == (503, "database unreachable\n")
    work.shutdown()


def test_other_paths_and_methods_are_not_found(slackbot: Bot):
    assert fetch(f"{slackbot.base_url}/nothing-here")[0] == 404
    assert fetch(slackbot.url)[0] == 404  # Slack only POSTs
    assert fetch(f"{slackbot.base_url}/healthz", method="POST")[0] == 404


def test_unsigned_stale_and_forged_requests_are_refused(slackbot: Bot):
    command = payloads.slash_command("/incident", "help", fake=slackbot.fake)
    assert slackbot.post(command, secret="wrong")[0] == 401
    assert slackbot.post(command, timestamp=1_000_000_000)[0] == 401  # outside the 5-minute window
    assert slackbot.fake.calls_to("response_url") == []
    assert slackbot.post(command)[0] == 200


def test_url_verification_echoes_the_challenge(slackbot: Bot):
    status, _, body = slackbot.post(payloads.url_verification("c-123"))
    assert status == 200
    assert "c-123" in body


def test_a_slack_failure_inside_a_listener_is_reported_to_the_user(slackbot: Bot):
    """views.open refused (e.g. an expired trigger): logged, and the person is told."""
    slackbot.fake.fail("views.open", error="expired_trigger_id", times=1)
    status, _, _ = slackbot.command("Checkout is failing")
    assert status == 200
    told = slackbot.fake.wait_for(lambda: slackbot.fake.calls_to("chat.postEphemeral"))
    assert "expired_trigger_id" in told[0]["text"]
    assert told[0]["user"] == "U0USER0001"

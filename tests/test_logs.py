"""LOG_FORMAT: readable text by default, or one JSON object per line carrying the ids of what is
being handled (incident, Slack team, user and channel, request), in the running bot and on the
threads that follow an ack."""

from __future__ import annotations

import contextvars
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents, logs
from bot.incidents import Actor, IncidentDraft
from bot.settings import Settings, SettingsError
from tests.fakeslack import FakeSlack, defaults, payloads, post_payload
from tests.slackbot import Bot, sign_in_client
from tests.test_run import REPO_ROOT, bot_process, free_port, stop, wait_until_healthy

IDS = ("incident_id", "team_id", "user_id", "channel_id", "request_id")
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")


def declare(sessions: sessionmaker[Session], **card: Any) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(title="Checkout is failing", severity="SEV3", **card)
        return incidents.declare(session, draft, Actor(defaults.USER_ID)).id


def raise_severity_in_a_running_bot(database_url: str, incident_id: int, **env: str) -> str:
    """`python -m bot run` in HTTP mode, one signed `/incident sev`, stopped: all it logged."""
    port = free_port()
    with (
        FakeSlack() as fake,
        bot_process(
            DATABASE_URL=database_url,
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_SIGNING_SECRET=defaults.SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            PORT=str(port),
            **env,
        ) as process,
    ):
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, base_url)
        command = payloads.slash_command("/incident", f"sev {incident_id} sev1", fake=fake)
        status, _, body = post_payload(f"{base_url}/slack/events", command)
        assert (status, body) == (200, f"INC-{incident_id} is now SEV1.")
        output = stop(process)
    assert process.returncode == 0, output
    return output


def test_json_logs_are_one_object_per_line_with_the_ids_of_the_request(
    database_url: str, committing_sessions: sessionmaker[Session]
):
    incident_id = declare(committing_sessions)
    output = raise_severity_in_a_running_bot(database_url, incident_id, LOG_FORMAT="json")

    lines = [json.loads(line) for line in output.splitlines()]  # every line, or this raises
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    starting = next(line for line in lines if line["message"].startswith("Starting in HTTP"))
    assert starting["level"] == "INFO" and starting["logger"] == "bot"
    assert not starting.keys() & set(IDS)  # no request is being handled then
    change = next(line for line in lines if "severity SEV3 -> SEV1" in line["message"])
    assert {name: change.get(name) for name in IDS[:4]} == {
        "incident_id": incident_id,
        "team_id": defaults.TEAM_ID,
        "user_id": defaults.USER_ID,
        "channel_id": defaults.CHANNEL_ID,
    }
    # Slack sends no request id for a command: one is made, never its trigger id.
    assert re.fullmatch(r"[0-9a-f]{32}", change["request_id"])


def test_the_default_log_stays_plain_text(
    database_url: str, committing_sessions: sessionmaker[Session]
):
    incident_id = declare(committing_sessions)
    output = raise_severity_in_a_running_bot(database_url, incident_id, LOG_FORMAT="")

    lines = output.splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), output
    assert any(
        line.endswith(f"INFO bot.incidents: INC-{incident_id} severity SEV3 -> SEV1 by U0USER0001")
        for line in lines
    ), output


@contextmanager
def json_lines(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """What this process logs from now on, as LOG_FORMAT=json writes it."""
    caplog.set_level(logging.INFO)
    stream = io.StringIO()
    handler = logs.handler("json", stream)
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_work_that_follows_the_ack_logs_with_the_ids_of_its_request(
    slackbot: Bot, caplog: pytest.LogCaptureFixture
):
    """The card update is sent on a work thread after the ack; Slack refuses it."""
    incident_id = declare(
        slackbot.sessions,
        slack_team_id=defaults.TEAM_ID,
        slack_channel_id=defaults.CHANNEL_ID,
        needs_card=True,
    )
    slackbot.fake.fail("chat.postMessage", error="channel_not_found", times=None)
    with json_lines(caplog) as stream:
        assert slackbot.command(f"sev {incident_id} sev1")[0] == 200
        slackbot.fake.wait_for(lambda: "channel_not_found" in stream.getvalue())

    lines = parsed(stream)
    change = next(line for line in lines if "severity SEV3 -> SEV1" in line["message"])
    refused = next(line for line in lines if "channel_not_found" in line["message"])
    assert refused["logger"] == "bot.delivery.outbox"
    assert {name: refused.get(name) for name in IDS} == {name: change[name] for name in IDS}
    assert refused["incident_id"] == incident_id


def test_web_lines_name_the_request_the_signed_in_person_and_the_incident(
    slackbot: Bot, caplog: pytest.LogCaptureFixture
):
    incident_id = declare(slackbot.sessions)
    client = slackbot.web.test_client()
    sign_in_client(client, "U0ALICE001", csrf_token="csrf-for-tests")

    def add_note(**headers: str) -> None:
        # The test client runs the app on this thread: in a context of its own, as waitress
        # runs each request (bot.logs.fresh_per_request).
        response = contextvars.Context().run(
            client.post,
            f"/incidents/INC-{incident_id}/notes",
            data={"csrf_token": "csrf-for-tests", "text": "Rolled back"},
            headers=headers,
        )
        assert response.status_code == 302, response.get_data(as_text=True)

    with json_lines(caplog) as stream:
        add_note(**{"X-Request-ID": "lb-4f2a9c"})
        add_note(**{"X-Request-ID": "not an id, {json}"})

    notes = [line for line in parsed(stream) if "note added by" in line["message"]]
    assert [(n["user_id"], n["incident_id"]) for n in notes] == [("U0ALICE001", incident_id)] * 2
    assert notes[0]["request_id"] == "lb-4f2a9c"  # a proxy's id, to follow it through
    assert re.fullmatch(r"[0-9a-f]{32}", notes[1]["request_id"])  # refused: a new one


def test_an_http_request_never_carries_the_ids_of_the_one_before_it(
    caplog: pytest.LogCaptureFixture,
):
    """A server thread that handled a Slack command then answers a health check."""

    def health_check(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        logging.getLogger("bot.server").warning("health check: database unreachable")
        start_response("503 Service Unavailable", [])
        return [b""]

    def on_a_used_thread(app: Any) -> None:
        logs.start_request("trigger-1", team_id="T0TEAM0001", user_id="U0USER0001")
        logs.bind(incident_id=7)
        app({"PATH_INFO": "/healthz"}, lambda status, headers: None)

    with json_lines(caplog) as stream:
        contextvars.Context().run(on_a_used_thread, health_check)
        contextvars.Context().run(on_a_used_thread, logs.fresh_per_request(health_check))

    unwrapped, fresh = parsed(stream)
    assert unwrapped["user_id"] == "U0USER0001"  # what the wrapper is there to prevent
    assert not fresh.keys() & set(IDS)


def test_warnings_and_crashed_threads_are_json_lines_too() -> None:
    """A traceback printed raw would break the one-object-per-line promise when it matters."""
    crash = (
        "import threading, warnings\n"
        "from bot import logs\n"
        "logs.configure('INFO', 'json')\n"
        "warnings.warn('an old API')\n"
        "worker = threading.Thread(target=lambda: 1 / 0, name='work-0')\n"
        "worker.start(); worker.join()\n"
        "raise RuntimeError('the main thread gives up')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", crash], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(line["level"], line["logger"], line["message"]) for line in lines] == [
        ("WARNING", "py.warnings", lines[0]["message"]),
        ("CRITICAL", "bot", "uncaught ZeroDivisionError in thread work-0"),
        ("CRITICAL", "bot", "uncaught RuntimeError"),
    ]
    assert "an old API" in lines[0]["message"]
    assert "ZeroDivisionError: division by zero" in lines[1]["exc_info"]
    assert "RuntimeError: the main thread gives up" in lines[2]["exc_info"]


@pytest.mark.parametrize(("raw", "expected"), [("", "text"), ("text", "text"), ("JSON", "json")])
def test_log_formats_are_accepted(raw: str, expected: str) -> None:
    assert Settings.from_env({"LOG_FORMAT": raw}).log_format == expected


@pytest.mark.parametrize("raw", ["xml", "logfmt", "json "])
def test_an_unknown_log_format_is_refused_with_the_choices(raw: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"LOG_FORMAT": raw})
    assert str(raised.value) == (
        "LOG_FORMAT must be text (readable, the default) or json (one object per line), "
        f"not {raw.lower()!r}"
    )


def test_check_refuses_an_unknown_log_format() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=REPO_ROOT,
        env={**os.environ, "LOG_FORMAT": "yaml"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Configuration error: LOG_FORMAT must be text")
    assert "not 'yaml'" in result.stderr


def test_a_change_is_logged_once_committed_and_never_when_rolled_back(
    committing_sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.incidents")
    alice = Actor("U0ALICE")
    with committing_sessions.begin() as session:
        number = incidents.declare(
            session, IncidentDraft(title="Checkout is failing", severity="SEV3"), alice
        ).id
        note = incidents.add_note(session, number, alice, "Rolled back").id
        assert "note added" not in caplog.text  # not yet: the transaction may still fail
    assert f"INC-{number} note added by U0ALICE" in caplog.text

    caplog.clear()
    with pytest.raises(incidents.NotFound), committing_sessions.begin() as session:
        # Deleted, then refused later in the same transaction: nothing was deleted after all.
        incidents.delete_note(session, note, alice)
        incidents.get_incident(session, 999_999)
    assert "deleted" not in caplog.text
    with committing_sessions() as session:
        assert incidents.timeline(session, number)[-1].text == "Rolled back"

"""The front door of HTTP mode, attacked over real HTTP: the bot under waitress, the fake Slack.

Refused requests must do nothing at all: no Slack call, no database write, no body in the logs.
Signed requests of every shape Slack sends must be understood, whatever words they hold.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, IncidentDraft
from db.models import IncidentEvent
from tests.fakeslack import FakeSlack, defaults, payloads, post_signed, signature_headers
from tests.slackbot import Bot, running_bot

USER = defaults.USER_ID
MARKER = "zq-secret-marker-zq"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def bot(slackbot: Bot) -> Bot:
    with slackbot.sessions.begin() as session:
        incidents.declare(
            session, IncidentDraft(title="Checkout down", severity="SEV2"), Actor(USER)
        )
    return slackbot


def table_counts(bot: Bot) -> dict[str, int]:
    tables = ("incidents", "incident_events", "deliveries", "processed_events", "screenshots")
    with bot.sessions() as session:
        return {t: session.scalar(text(f"SELECT count(*) FROM {t}")) or 0 for t in tables}


def note_command(bot: Bot) -> str:
    """A command that would write a note and message its sender, were it acted on."""
    body, _ = payloads.encode(
        payloads.slash_command("/incident", f"note 1 {MARKER}", fake=bot.fake, user_id="U0VICTIM01")
    )
    return body


def raw_post(
    bot: Bot, headers: dict[str, str], body: bytes = b"", *, chunks: list[bytes] | None = None
) -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand (so headers and framing are exactly as given).

    With `chunks`, the body is sent chunked and the final chunk only if the server is still
    listening: a server that refuses a body midway answers and closes before it ends.
    """
    host, port = bot.base_url.removeprefix("http://").split(":")
    lines = ["POST /slack/events HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        if chunks is None:
            sock.sendall(body)
        else:
            for chunk in chunks:
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                if _answered(sock):
                    break
            else:
                sock.sendall(b"0\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def _answered(sock: socket.socket) -> bool:
    """Whether the server has started to answer (without taking what it sent)."""
    sock.settimeout(0.1)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except TimeoutError:
        return False
    finally:
        sock.settimeout(10)


def settle_and_collect(bot: Bot) -> list[str]:
    """Send one good command and wait for its answer; every Slack call made, by method."""
    command = payloads.slash_command("/incident", "list", fake=bot.fake)
    status, _, _ = bot.post(command)
    assert status == 200
    bot.fake.wait_for(lambda: bot.fake.responses(command["response_url"]))
    return [call.method for call in bot.fake.calls]


# --- Unsigned requests do nothing -------------------------------------------------------------

# Fullwidth digits count as digits to Python's int() and \\d, never to Slack.
MALFORMED_TIMESTAMPS = [
    "abc",
    "1e20",
    "1.5",
    "NaN",
    "",
    " ",
    "-1",
    "0x10",
    "\uff11\uff12\uff13",
    "9" * 40,
]


@pytest.mark.parametrize("timestamp", MALFORMED_TIMESTAMPS)
def test_a_malformed_timestamp_header_is_refused_with_401_and_nothing_happens(
    bot: Bot, timestamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = note_command(bot)
    before = table_counts(bot)
    bot.fake.clear_calls()
    # Signed over the malformed timestamp too, as an attacker who knows the format would.
    signature = signature_headers(body, timestamp="0")["X-Slack-Signature"]
    status, reply = raw_post(
        bot,
        {
            "Content-Type": FORM,
            "Content-Length": str(len(body)),
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
        body.encode(),
    )

    assert (status, json.loads(reply)) == (401, {"error": "invalid request"})
    assert table_counts(bot) == before
    assert settle_and_collect(bot) == ["response_url"]  # only the good command's answer
    assert MARKER not in caplog.text
    assert "U0VICTIM01" not in caplog.text


def test_a_request_without_signature_headers_is_refused(bot: Bot) -> None:
    body = note_command(bot)
    before = table_counts(bot)
    bot.fake.clear_calls()

    status, _ = raw_post(
        bot, {"Content-Type": FORM, "Content-Length": str(len(body))}, body.encode()
    )

    assert status == 401
    assert table_counts(bot) == before
    assert settle_and_collect(bot) == ["response_url"]


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "v0=",
        "v1=" + "0" * 64,
        "v0=" + "A" * 64,  # upper-case hex is not what Slack sends
        "v0=" + "0" * 64,  # well formed, wrong
        "v0=" + "0" * 63,
        "v0=" + "0" * 64 + ", v0=" + "0" * 64,  # a repeated header, joined by the server
    ],
)
def test_a_wrong_or_malformed_signature_is_refused(
    bot: Bot, signature: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = note_command(bot)
    before = table_counts(bot)
    bot.fake.clear_calls()

    status, _ = raw_post(
        bot,
        {
            "Content-Type": FORM,
            "Content-Length": str(len(body)),
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": signature,
        },
        body.encode(),
    )

    assert status == 401
    assert table_counts(bot) == before
    assert settle_and_collect(bot) == ["response_url"]
    assert MARKER not in caplog.text


@pytest.mark.parametrize("age", [301, -301, 10**9])
def test_a_stale_or_future_signature_is_refused(bot: Bot, age: int) -> None:
    body = note_command(bot)
    bot.fake.clear_calls()

    status, _, _ = post_signed(bot.url, body, FORM, timestamp=int(time.time()) - age)

    assert status == 401
    assert settle_and_collect(bot) == ["response_url"]


def test_a_body_signed_with_another_secret_is_refused(bot: Bot) -> None:
    bot.fake.clear_calls()
    status, _, _ = post_signed(bot.url, note_command(bot), FORM, secret="not-the-secret")
    assert status == 401
    assert settle_and_collect(bot) == ["response_url"]


def test_the_signature_covers_the_exact_bytes(bot: Bot) -> None:
    """Signed, then one byte changed on the way: refused."""
    body = note_command(bot)
    headers = signature_headers(body)
    tampered = body.replace(MARKER, MARKER.upper())
    bot.fake.clear_calls()
    status, _ = raw_post(
        bot,
        {"Content-Type": FORM, "Content-Length": str(len(tampered)), **headers},
        tampered.encode(),
    )
    assert status == 401
    assert settle_and_collect(bot) == ["response_url"]


# --- Body size --------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_by_its_length_before_it_is_sent(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot.fake.clear_calls()
    # 20 MB announced, nothing sent: the answer can only come from the header.
    status, _ = raw_post(
        bot,
        {
            "Content-Type": FORM,
            "Content-Length": str(20 * 1024 * 1024),
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )

    assert status == 413
    assert settle_and_collect(bot) == ["response_url"]


@pytest.fixture
def small_limit_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """SLACK_MAX_BODY_BYTES at its least, 64 KiB, so that going past it is quick."""
    with running_bot(
        fake_slack, engine, committing_sessions, slack_max_body_bytes=64 * 1024
    ) as running:
        yield running


def test_a_chunked_body_is_cut_off_at_the_limit(
    small_limit_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = small_limit_bot
    caplog.set_level(logging.DEBUG)
    bot.fake.clear_calls()
    limit = bot.settings.slack_max_body_bytes
    piece = (f"text={MARKER}&" * 400).encode()  # about 8 KB a chunk up to near the limit,
    small = f"text={MARKER}&".encode() * 40  # then about 840 bytes a chunk, up to twice it
    chunks = [piece] * ((limit - 8 * 1024) // len(piece)) + [small] * (limit // len(small))

    status, _ = raw_post(
        bot,
        {
            "Content-Type": FORM,
            "Transfer-Encoding": "chunked",
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
        chunks=chunks,
    )

    assert status == 413
    assert settle_and_collect(bot) == ["response_url"]
    assert MARKER not in caplog.text


def test_a_chunked_signed_body_within_the_limit_is_served(bot: Bot) -> None:
    command = payloads.slash_command("/incident", "list", fake=bot.fake)
    body, content_type = payloads.encode(command)
    raw = body.encode()
    status, _ = raw_post(
        bot,
        {"Content-Type": content_type, "Transfer-Encoding": "chunked", **signature_headers(raw)},
        chunks=[raw[:50], raw[50:]],
    )
    assert status == 200
    answer = bot.fake.wait_for(lambda: bot.fake.responses(command["response_url"]))
    assert answer[0]["text"] == "1 incident"


def test_a_signed_body_at_the_limit_is_read_and_one_byte_over_is_not(slackbot: Bot) -> None:
    limit = slackbot.settings.slack_max_body_bytes
    command = payloads.slash_command("/incident", "help", fake=slackbot.fake)
    body, content_type = payloads.encode(command)
    padding = limit - len(body) - len("&pad=")
    exact = f"{body}&pad={'x' * padding}"
    assert len(exact) == limit

    assert post_signed(slackbot.url, exact, content_type)[0] == 200
    over = exact + "x"
    # Announced, not sent: the server answers on the length and closes; a client still sending
    # the body would see a broken pipe instead of the answer.
    headers = {"Content-Type": content_type, "Content-Length": str(len(over))}
    assert raw_post(slackbot, {**headers, **signature_headers(over)})[0] == 413


# --- Every body Slack can send is parsed, whatever words it holds ------------------------------

PAYLOAD_WORDS = [
    "payload service down",
    "payload=1",
    "the payload was malformed",
    '{"payload": "json-looking"}',
    "payload&payload=",
]


@pytest.mark.parametrize("words", PAYLOAD_WORDS)
def test_a_command_holding_the_word_payload_is_understood(bot: Bot, words: str) -> None:
    command = payloads.slash_command("/incident", f"note 1 {words}", fake=bot.fake)
    assert bot.post(command)[::2] == (200, "Note added to INC-1.")
    with bot.sessions() as session:
        notes = session.scalars(select(IncidentEvent.text).where(IncidentEvent.kind == "note"))
        assert words in list(notes)


def test_a_title_starting_with_payload_opens_the_declare_form_with_it(bot: Bot) -> None:
    status, _, _ = bot.command("payload service down")
    assert status == 200
    opened = bot.fake.wait_for_call("views.open")
    title = json.dumps(opened[-1]["view"])
    assert "payload service down" in title


def test_a_search_for_payload_lists_what_matches(bot: Bot) -> None:
    with bot.sessions.begin() as session:
        incidents.declare(
            session,
            IncidentDraft(title="Payload parser rejects orders", severity="SEV3"),
            Actor(USER),
        )
    command = payloads.slash_command("/incident", "list payload", fake=bot.fake)
    assert bot.post(command)[0] == 200
    listed = bot.fake.wait_for(lambda: bot.fake.responses(command["response_url"]))
    assert "Payload parser rejects orders" in json.dumps(listed[0])
    assert "Checkout down" not in json.dumps(listed[0])


def test_a_command_from_a_channel_named_payload_team_is_understood(bot: Bot) -> None:
    command = payloads.slash_command(
        "/incident", "help", fake=bot.fake, channel_name="payload-team"
    )
    status, _, body = bot.post(command)
    assert status == 200
    assert "run incidents from Slack" in body


# --- Malformed signed bodies: 400, never a 500 or a stack trace -------------------------------


def _interactive(payload: Any) -> str:
    from urllib.parse import urlencode

    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)})


def _block_actions(**changes: Any) -> dict[str, Any]:
    payload = payloads.block_actions(
        payloads.action("incident_add_note", block_id="b", value='{"id": 1}')
    )
    payload.update(changes)
    return payload


MALFORMED_BODIES: dict[str, tuple[bytes | str, str]] = {
    "not UTF-8": (b"text=\xff\xfe&command=%2Fincident", FORM),
    "a %-escape that is not UTF-8": ("command=%2Fincident&text=%ff&user_id=U1", FORM),
    "a form field without =": ("command=%2Fincident&garbage", FORM),
    "empty": ("", FORM),
    "payload is not JSON": (_interactive("{not json"), FORM),
    "payload is a JSON list": (_interactive([1, 2]), FORM),
    "payload is a JSON string": (_interactive('"block_actions"'), FORM),
    "payload nested too deep": (_interactive("[" * 100_000 + "]" * 100_000), FORM),
    "block_actions with no actions": (_interactive(_block_actions(actions=[])), FORM),
    "block_actions whose actions is an object": (
        _interactive(_block_actions(actions={"a": 1})),
        FORM,
    ),
    "an action without an action_id": (_interactive(_block_actions(actions=[{"x": 1}])), FORM),
    "an action that is a string": (_interactive(_block_actions(actions=["go"])), FORM),
    "block_actions without a user": (_interactive(_block_actions(user=None)), FORM),
    "a user that is a string": (_interactive(_block_actions(user="U0USER0001")), FORM),
    "view_submission without a view": (
        _interactive({"type": "view_submission", "user": {"id": USER}}),
        FORM,
    ),
    "view_submission whose state is a list": (
        _interactive(
            {
                "type": "view_submission",
                "user": {"id": USER},
                "view": {"type": "modal", "callback_id": "incident_note", "state": []},
            }
        ),
        FORM,
    ),
    "a shortcut without a trigger_id": (
        _interactive({"type": "shortcut", "user": {"id": USER}, "callback_id": "report_incident"}),
        FORM,
    ),
    "an options load without a value": (
        _interactive(
            {"type": "block_suggestion", "user": {"id": USER}, "action_id": "incident_picker"}
        ),
        FORM,
    ),
    "a command without a user_id": ("command=%2Fincident&text=help&trigger_id=1", FORM),
    "a JSON body that is a list": ("[]", "application/json"),
    "an event whose event is a string": (
        json.dumps({"type": "event_callback", "event": "app_home_opened"}),
        "application/json",
    ),
    "a typeless JSON object": (json.dumps({"hello": "world"}), "application/json"),
    "an unknown content type": ("command=%2Fincident", "text/plain"),
}


@pytest.mark.parametrize("name", MALFORMED_BODIES)
def test_a_malformed_signed_body_gets_400(bot: Bot, name: str) -> None:
    body, content_type = MALFORMED_BODIES[name]
    before = table_counts(bot)
    bot.fake.clear_calls()

    status, _, reply = post_signed(bot.url, body, content_type)

    assert (status, json.loads(reply)) == (400, {"error": "malformed request"})
    assert "Traceback" not in reply
    assert table_counts(bot) == before
    assert settle_and_collect(bot) == ["response_url"]


# --- Well-formed requests the bot does not handle: a quiet 200 --------------------------------

UNHANDLED: dict[str, dict[str, Any]] = {
    "a link button": payloads.block_actions(
        payloads.action("some_link_button", block_id="b", value="x")
    ),
    "an unknown view": {
        "type": "view_submission",
        "user": {"id": USER},
        "team": {"id": defaults.TEAM_ID},
        "view": {"id": "V1", "type": "modal", "callback_id": "retired", "state": {"values": {}}},
    },
    "a view closed": {
        "type": "view_closed",
        "user": {"id": USER},
        "team": {"id": defaults.TEAM_ID},
        "view": {"id": "V1", "type": "modal", "callback_id": "incident_note"},
    },
    "an unknown shortcut": payloads.global_shortcut("retired_shortcut"),
    "an unknown options load": payloads.block_suggestion("retired_picker", "abc"),
    "an event not subscribed to": payloads.event_callback(
        {"type": "reaction_added", "user": USER, "reaction": "eyes"}
    ),
}


@pytest.mark.parametrize("name", UNHANDLED)
def test_a_well_formed_request_without_a_listener_gets_a_quiet_200(
    bot: Bot, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot.fake.clear_calls()

    status, _, reply = bot.post(UNHANDLED[name])

    assert (status, reply) == (200, "")
    assert settle_and_collect(bot) == ["response_url"]  # nobody was messaged about it
    assert "Traceback" not in caplog.text


def test_another_slash_command_gets_a_quiet_200(bot: Bot) -> None:
    bot.fake.clear_calls()
    status, _, reply = bot.post(payloads.slash_command("/other", "x", fake=bot.fake))
    assert (status, reply) == (200, "")
    assert settle_and_collect(bot) == ["response_url"]


def test_refusals_are_logged_as_one_line_without_the_body(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    post_signed(bot.url, note_command(bot), FORM, secret="wrong")
    refusals = [r for r in caplog.records if r.name == "bot.slack.http"]
    assert len(refusals) == 1
    assert "signature does not match" in refusals[0].getMessage()
    assert MARKER not in caplog.text


def test_nothing_of_a_refused_request_reaches_the_database_even_through_events(bot: Bot) -> None:
    event = payloads.event_callback(payloads.app_home_opened_event(USER))
    body, content_type = payloads.encode(event)
    with bot.sessions() as session:
        before = session.scalar(select(func.count()).select_from(text("processed_events")))

    assert post_signed(bot.url, body, content_type, secret="wrong")[0] == 401

    with bot.sessions() as session:
        assert session.scalar(select(func.count()).select_from(text("processed_events"))) == before


def test_the_tests_sign_requests_as_slack_sdk_verifies_them() -> None:
    """The fake's signing is written out by hand (it must sign non-UTF-8 bytes too)."""
    from slack_sdk.signature import SignatureVerifier

    body = "command=%2Fincident&text=caf%C3%A9"
    headers = signature_headers(body)
    verifier = SignatureVerifier(defaults.SIGNING_SECRET)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not verifier.is_valid(
        body + "x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )

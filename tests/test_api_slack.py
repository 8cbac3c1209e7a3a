"""The REST API as Slack and the network see it: a change through the API edits the card and
speaks in its thread through the outbox, and bodies over their limit are refused by the server
before they are sent."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.server import UPLOAD_OVERHEAD, WEB_MAX_BODY_BYTES
from tests.fakeslack import FakeSlack
from tests.slackbot import Bot, running_bot
from tests.test_api import new_token, token_caller

CARDS = "C0CHAN0001"


@pytest.fixture
def bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """Cards in CARDS, and the outbox's workers running, as `python -m bot run` has them."""
    with running_bot(
        fake_slack, engine, committing_sessions, delivery_worker=True, incident_channel=CARDS
    ) as running:
        yield running


def replies_saying(fake: FakeSlack, card_ts: str, words: str) -> list[dict[str, Any]]:
    return [m for m in fake.thread(CARDS, card_ts) if words in json.dumps(m)]


def test_a_change_through_the_api_edits_the_card_and_tells_its_thread(bot: Bot):
    tool = token_caller(bot)
    label = f"API token {tool.actor.removeprefix('token:')}"
    declared = tool.declare(title="Payments failing")
    assert declared["card_channel_id"] == CARDS
    card = bot.fake.wait_for(lambda: bot.fake.messages(CARDS))[0]
    assert "Payments failing" in json.dumps(card)
    moved = tool.post(f"/incidents/{declared['id']}/status", json={"status": "investigating"})
    assert moved.status_code == 200
    edited = bot.fake.wait_for(
        lambda: (m := bot.fake.message(CARDS, card["ts"])) and "edited" in m and m
    )
    assert "investigating" in json.dumps(edited).lower()
    told = bot.fake.wait_for(lambda: replies_saying(bot.fake, card["ts"], label))
    assert "investigating" in json.dumps(told).lower()
    tool.post(f"/incidents/{declared['id']}/notes", json={"text": "Card note from the API"})
    bot.fake.wait_for(lambda: replies_saying(bot.fake, card["ts"], "Card note from the API"))


def test_an_intake_repeat_is_a_reply_under_the_same_card(bot: Bot):
    tool = token_caller(bot)
    alert = {
        "title": "Queue backing up",
        "severity": "SEV3",
        "service": "jobs",
        "fingerprint": "q1",
    }
    assert tool.post("/intake", json=alert).status_code == 201
    assert tool.post("/intake", json=alert).status_code == 200
    card = bot.fake.wait_for(lambda: bot.fake.messages(CARDS))[0]
    bot.fake.wait_for(lambda: replies_saying(bot.fake, card["ts"], "Alert fired again"))
    assert len(bot.fake.messages(CARDS)) == 1


def raw_request(
    bot: Bot, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One HTTP/1.1 request written by hand, so Content-Length can announce what never comes."""
    host, port = bot.base_url.removeprefix("http://").split(":")
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, rest = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), rest


def test_the_server_refuses_an_announced_body_over_its_paths_limit(slackbot: Bot):
    _, token = new_token(slackbot)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    upload_limit = slackbot.settings.max_screenshot_bytes + UPLOAD_OVERHEAD
    # Announced, never sent: the answer comes from the headers alone.
    for path, limit in (
        ("/api/v1/incidents", WEB_MAX_BODY_BYTES),
        ("/api/v1/intake", WEB_MAX_BODY_BYTES),
        ("/api/v1/incidents/1/notes", WEB_MAX_BODY_BYTES),
        ("/api/v1/incidents/1/screenshots", upload_limit),
    ):
        status, _ = raw_request(slackbot, "POST", path, {**auth, "Content-Length": str(limit + 1)})
        assert status == 413, path
    # Within the upload path's larger limit, a file the JSON paths would refuse is read and
    # judged; a form field that large is not.
    multipart = {**auth, "Content-Type": "multipart/form-data; boundary=xyz"}
    for part, data, status, says in (
        ('name="file"; filename="big.png"', b"x" * (WEB_MAX_BODY_BYTES + 1), 422, b"not a PNG"),
        ('name="caption"', b"c" * (WEB_MAX_BODY_BYTES + 1), 413, b"A form field other than a file"),
    ):
        declared = token_caller(slackbot).declare()
        body = (
            f"--xyz\r\nContent-Disposition: form-data; {part}\r\n\r\n".encode()
            + data
            + b"\r\n--xyz--\r\n"
        )
        headers = {**multipart, "Content-Length": str(len(body))}
        path = f"/api/v1/incidents/{declared['id']}/screenshots"
        answered, answer = raw_request(slackbot, "POST", path, headers, body)
        assert (answered, says in answer) == (status, True), answer

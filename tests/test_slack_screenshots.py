"""Screenshots through the bot: every way in and out, the real bot over HTTP, the fake Slack behind.

Files are real images made here with Pillow and hosted on the fake Slack; what the bot stored is
read back from PostgreSQL and compared with what the fake served. Work the bot does after its
ack() is awaited on the fake (`wait_for`); where nothing is expected to happen, the bot is shut
down first (its listeners finish) and then the absence is checked.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker, undefer

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, IncidentDraft, screenshots
from bot.slack import ids
from db.models import EventKind, IncidentEvent, Screenshot
from tests.fakeslack import FakeSlack, defaults, payloads
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.steps import FIXED
from tests.test_screenshots import selects_content

USER = defaults.USER_ID
BOB = "U0BOB000001"
CAROL = "U0CAROL0001"
CHANNEL = defaults.CHANNEL_ID
BOT_USER = defaults.BOT_USER_ID
REPO_ROOT = Path(__file__).resolve().parent.parent
NOT_AN_IMAGE = "not a PNG, JPEG, GIF or WebP image"


# --- images, made here ---------------------------------------------------------------------------


def image(fmt: str, size: tuple[int, int] = (64, 48), seed: int = 1) -> bytes:
    mode = "RGBA" if fmt == "PNG" else "RGB"
    pixels = random.Random(seed).randbytes(size[0] * size[1] * len(mode))
    picture = Image.frombytes(mode, size, pixels)
    if fmt == "GIF":
        picture = picture.convert("P")
    out = io.BytesIO()
    picture.save(out, format=fmt)
    return out.getvalue()


TEXT = b"Notes from the call: the error rate went up at 14:02.\n" * 10


def kib(data: bytes) -> str:
    """How the bot should show a size of a few KB, worked out here."""
    assert 1024 <= len(data) < 1024 * 1024
    return f"{len(data) / 1024:.1f} KB"


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def bot(slackbot: Bot) -> Bot:
    for user_id, name in ((BOB, "bob"), (CAROL, "carol")):
        slackbot.fake.add_user(user_id, name)
    return slackbot


def with_card(
    sessions: sessionmaker[Session], fake: FakeSlack, title: str = "Checkout is failing"
) -> tuple[int, str]:
    """An incident whose card is in CHANNEL; returns its id and the card's ts."""
    with sessions.begin() as session:
        incident_id = incidents.declare(
            session,
            IncidentDraft(title=title, severity="SEV3", slack_channel_id=CHANNEL),
            Actor(USER),
        ).id
    assert not Deliverer(sessions, fake.client()).drain().problems
    with sessions() as session:
        card_ts = incidents.get_incident(session, incident_id).card_ts
    assert card_ts
    return incident_id, card_ts


def shots(sessions: sessionmaker[Session], incident_id: int | None = None) -> list[Screenshot]:
    """The stored screenshots, with their bytes read back from PostgreSQL."""
    query = select(Screenshot).options(undefer(Screenshot.content)).order_by(Screenshot.id)
    if incident_id is not None:
        query = query.where(Screenshot.incident_id == incident_id)
    with sessions() as session:
        return list(session.scalars(query))


def timeline(sessions: sessionmaker[Session], incident_id: int) -> list[IncidentEvent]:
    with sessions() as session:
        return list(
            session.scalars(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(IncidentEvent.id)
            )
        )


def replies(fake: FakeSlack, card_ts: str) -> list[str]:
    """The bot's text replies in the card's thread (not re-posted files)."""
    return [
        m["text"]
        for m in fake.thread(CHANNEL, card_ts)
        if m.get("user") == BOT_USER and not m.get("files")
    ]


def wait_for_reply(fake: FakeSlack, card_ts: str, seen: int) -> str:
    fake.wait_for(lambda: len(replies(fake, card_ts)) > seen)
    found = replies(fake, card_ts)
    assert len(found) == seen + 1, found
    return found[-1]


def dms(fake: FakeSlack, user_id: str = USER) -> list[str]:
    """What the app told `user_id` in their DM with it."""
    return [m["text"] for m in fake.messages(user_id)]


def wait_for_dm(fake: FakeSlack, seen: int, user_id: str = USER) -> str:
    fake.wait_for(lambda: len(dms(fake, user_id)) > seen)
    return dms(fake, user_id)[seen]


def ephemerals(fake: FakeSlack, user_id: str = USER) -> list[str]:
    return [e["text"] for e in fake.ephemeral_messages(user=user_id)]


def new_view(fake: FakeSlack, user_id: str, previous: dict[str, Any] | None) -> dict[str, Any]:
    previous_id = previous["id"] if previous else None

    def opened() -> dict[str, Any] | None:
        view = fake.top_view(user_id)
        return view if view is not None and view["id"] != previous_id else None

    return fake.wait_for(opened)


def submit(
    bot: Bot, view: dict[str, Any], inputs: dict[str, Any], *, user_id: str = USER
) -> dict[str, Any] | None:
    """Submit a modal; the `response_action` body, or None when it simply closed."""
    status, _, body = bot.post(
        payloads.view_submission(view, inputs, fake=bot.fake, user_id=user_id)
    )
    assert status == 200, body
    return json.loads(body) if body else None


def permalink(fake: FakeSlack, ts: str) -> str:
    return fake.client().chat_getPermalink(channel=CHANNEL, message_ts=ts)["permalink"]


# --- message shortcut "Attach to incident" -------------------------------------------------------


def open_attach_shortcut(bot: Bot, message: dict[str, Any], user_id: str = USER) -> dict[str, Any]:
    previous = bot.fake.top_view(user_id)
    status, _, body = bot.post(
        payloads.message_shortcut(
            ids.ATTACH_SHORTCUT, message, fake=bot.fake, channel_id=CHANNEL, user_id=user_id
        )
    )
    assert (status, body) == (200, "")
    modal = new_view(bot.fake, user_id, previous)
    assert modal["callback_id"] == ids.ATTACH_FROM_MESSAGE_VIEW
    return modal


def attach_message(
    bot: Bot,
    message: dict[str, Any],
    incident_id: int,
    card_ts: str,
    *,
    user_id: str = USER,
    caption: str | None = None,
) -> tuple[str, str]:
    """Run the shortcut on `message` and pick the incident; the thread reply and the DM."""
    modal = open_attach_shortcut(bot, message, user_id)
    seen_replies, seen_dms = len(replies(bot.fake, card_ts)), len(dms(bot.fake, user_id))
    inputs: dict[str, Any] = {ids.INCIDENT_PICKER: str(incident_id)}
    if caption is not None:
        inputs[ids.CAPTION_BLOCK] = caption
    assert submit(bot, modal, inputs, user_id=user_id) is None
    told = wait_for_dm(bot.fake, seen_dms, user_id)
    return wait_for_reply(bot.fake, card_ts, seen_replies), told


def picker_options(bot: Bot, modal: dict[str, Any], typed: str) -> list[str]:
    status, _, body = bot.post(payloads.block_suggestion(ids.INCIDENT_PICKER, typed, view=modal))
    assert status == 200, body
    return [option["value"] for option in json.loads(body)["options"]]


def test_message_shortcut_keeps_the_image_refuses_the_text_file_and_replies_once(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    checkout, checkout_ts = with_card(sessions, fake, "Checkout is failing")
    search, _ = with_card(sessions, fake, "Search is slow")
    old, _ = with_card(sessions, fake, "Old outage")
    with sessions.begin() as session:
        incidents.change_status(
            session, old, "resolved", Actor(ADMIN_ID, is_admin=True), resolution=FIXED
        )
        incidents.add_note(session, checkout, Actor(USER), "Still failing")  # most recent now
    assert not Deliverer(sessions, fake.client()).drain().problems
    graph = image("PNG", (80, 60), seed=2)
    good = fake.add_file("graph.png", graph, "image/png", user=BOB)
    bad = fake.add_file("notes.png", TEXT, "image/png", user=BOB)
    message = fake.add_message(CHANNEL, "Look at this", user=BOB, files=[good, bad])

    modal = open_attach_shortcut(bot, message)
    assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == [
        ids.INCIDENT_BLOCK,
        ids.CAPTION_BLOCK,
    ]
    # Type-ahead over active incidents, the most recently active first.
    assert picker_options(bot, modal, "") == [str(checkout), str(search)]
    assert picker_options(bot, modal, "search") == [str(search)]
    seen = len(dms(fake, USER))  # the reporter, subscribed, was told "Old outage" is resolved

    assert (
        submit(
            bot, modal, {ids.INCIDENT_PICKER: str(checkout), ids.CAPTION_BLOCK: "After deploy 42"}
        )
        is None
    )
    told = wait_for_dm(fake, seen)
    reply = wait_for_reply(fake, checkout_ts, 1)  # the note's reply came first

    link = permalink(fake, message["ts"])
    [kept] = shots(sessions, checkout)
    assert (kept.filename, kept.mime_type, kept.width, kept.height) == (
        "graph.png",
        "image/png",
        80,
        60,
    )
    assert (kept.uploaded_by, kept.caption, kept.slack_file_id) == (
        USER,
        "After deploy 42",
        good["id"],
    )
    assert kept.source_permalink == link
    assert kept.size_bytes == len(graph)
    assert kept.content == graph == fake.file_content(good["id"])
    assert shots(sessions, search) == []
    assert replies(fake, checkout_ts)[-1] == reply and len(replies(fake, checkout_ts)) == 2
    assert f"<@{USER}> attached 1 screenshot from <{link}|a message>" in reply
    assert "> After deploy 42" in reply
    added = timeline(sessions, checkout)[-1]
    assert added.kind == EventKind.SCREENSHOT_ADDED
    assert added.details["stored"] == [kept.id]
    assert f"Kept 1 screenshot(s) on INC-{checkout}." in told
    # What was refused is named as the person knows it, with the reason.
    assert f"Not kept: notes.png ({NOT_AN_IMAGE})" in reply
    assert f"Not kept: notes.png: {NOT_AN_IMAGE}" in told


def test_message_shortcut_on_a_thread_reply_attaches_its_images(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    photo = image("JPEG", (50, 40), seed=3)
    parent = fake.add_message(CHANNEL, "Anyone else seeing 502s?", user=BOB)
    file = fake.add_file("photo.jpg", photo, "image/jpeg", user=CAROL)
    reply_message = fake.add_message(
        CHANNEL, "yes, here", user=CAROL, files=[file], thread_ts=parent["ts"]
    )
    assert reply_message["thread_ts"] == parent["ts"]

    reply, told = attach_message(bot, reply_message, incident_id, card_ts)

    link = permalink(fake, reply_message["ts"])
    assert "thread_ts=" in link
    [kept] = shots(sessions, incident_id)
    assert (kept.content, kept.mime_type, kept.width, kept.height) == (photo, "image/jpeg", 50, 40)
    assert kept.source_permalink == link
    assert f"attached 1 screenshot from <{link}|a message>" in reply
    assert f"Kept 1 screenshot(s) on INC-{incident_id}." in told


def test_the_same_image_attached_again_or_by_someone_else_is_already_there(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    graph = image("PNG", seed=4)
    first = fake.add_message(
        CHANNEL, "graph", files=[fake.add_file("graph.png", graph, "image/png")]
    )
    copy = fake.add_file("graph-copy.png", graph, "image/png", user=BOB)
    second = fake.add_message(CHANNEL, "same graph", user=BOB, files=[copy])

    kept_reply, _ = attach_message(bot, first, incident_id, card_ts)
    again_reply, again_told = attach_message(bot, first, incident_id, card_ts)
    bob_reply, bob_told = attach_message(bot, second, incident_id, card_ts, user_id=BOB)

    [kept] = shots(sessions, incident_id)
    assert (kept.uploaded_by, kept.filename, kept.content) == (USER, "graph.png", graph)
    assert "attached 1 screenshot" in kept_reply
    assert "attached 0 screenshots" in again_reply
    assert "Already there: graph.png" in again_reply
    assert f"<@{BOB}> attached 0 screenshots" in bob_reply
    assert "Already there: graph-copy.png" in bob_reply
    assert f"INC-{incident_id} already had: graph.png" in again_told
    assert f"INC-{incident_id} already had: graph-copy.png" in bob_told
    assert len(replies(fake, card_ts)) == 3


def test_message_shortcut_on_a_message_without_files_says_so(bot: Bot) -> None:
    payload = payloads.message_shortcut(
        ids.ATTACH_SHORTCUT,
        bot.fake.add_message(CHANNEL, "no files here"),
        fake=bot.fake,
        channel_id=CHANNEL,
    )
    status, _, body = bot.post(payload)

    assert (status, body) == (200, "")
    bot.fake.wait_for(lambda: bot.fake.responses(payload["response_url"]))
    assert "no files" in bot.fake.responses(payload["response_url"])[0]["text"]
    assert bot.fake.calls_to("views.open") == []


# --- the card's "Attach screenshot" button -------------------------------------------------------


def open_attach_modal(bot: Bot, card_ts: str, user_id: str = USER) -> dict[str, Any]:
    card = bot.fake.message(CHANNEL, card_ts)
    assert card is not None
    previous = bot.fake.top_view(user_id)
    status, _, body = bot.post(
        payloads.block_actions_from(
            card, ids.ATTACH_ACTION, channel_id=CHANNEL, fake=bot.fake, user_id=user_id
        )
    )
    assert status == 200, body
    modal = new_view(bot.fake, user_id, previous)
    assert modal["callback_id"] == ids.ATTACH_VIEW
    return modal


def test_attach_button_stores_several_images_and_the_card_then_lists_them(
    bot: Bot, statements: list[str]
) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    served = {
        "graph.png": (image("PNG", (64, 48), 5), "image/png", 64, 48),
        "photo.jpg": (image("JPEG", (30, 20), 5), "image/jpeg", 30, 20),
        "anim.gif": (image("GIF", (12, 34), 5), "image/gif", 12, 34),
        "board.webp": (image("WEBP", (40, 41), 5), "image/webp", 40, 41),
        "actually-a-jpeg.png": (image("JPEG", (25, 25), 6), "image/jpeg", 25, 25),
    }
    files = [fake.add_file(name, data, "image/png") for name, (data, *_) in served.items()]

    modal = open_attach_modal(bot, card_ts)
    element = next(b for b in modal["blocks"] if b.get("block_id") == ids.FILES_BLOCK)["element"]
    assert element["type"] == "file_input"
    assert {"png", "jpg", "gif", "webp"} <= set(element["filetypes"])
    assert element.get("max_files", 1) > 1
    assert submit(bot, modal, {ids.FILES_BLOCK: files, ids.CAPTION_BLOCK: "Before/after"}) is None
    told = wait_for_dm(fake, 0)
    reply = wait_for_reply(fake, card_ts, 0)
    by_the_bot = list(statements)  # before this test's own reads

    stored = shots(sessions, incident_id)
    assert {s.filename: (s.content, s.mime_type, s.width, s.height) for s in stored} == served
    assert {s.slack_file_id for s in stored} == {f["id"] for f in files}
    assert all(s.caption == "Before/after" and s.source_permalink is None for s in stored)
    assert f"<@{USER}> attached 5 screenshots" in reply
    assert f"Kept 5 screenshot(s) on INC-{incident_id}." in told
    assert fake.calls_to("files.info") == []  # full file objects: nothing to look up

    card = fake.message(CHANNEL, card_ts)
    assert card is not None
    card_text = json.dumps(card["blocks"], ensure_ascii=False)
    graph = served["graph.png"][0]
    assert f"🖼️ graph.png · {kib(graph)} · 64x48 · <@{USER}>" in card_text
    assert "board.webp" in card_text and "40x41" in card_text
    buttons = {
        e["action_id"]: e["text"]["text"]
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
    }
    assert buttons[ids.SCREENSHOTS_ACTION] == "Screenshots (5)"
    # Storing read nothing back; the card was drawn without the bytes.
    assert any("FROM screenshots" in s for s in by_the_bot)
    assert selects_content(by_the_bot) == []


def test_attach_submission_without_files_is_refused_inline(bot: Bot) -> None:
    incident_id, card_ts = with_card(bot.sessions, bot.fake)
    modal = open_attach_modal(bot, card_ts)

    answer = submit(bot, modal, {ids.CAPTION_BLOCK: "nothing attached"})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [ids.FILES_BLOCK]
    assert shots(bot.sessions, incident_id) == []
    assert [e.kind for e in timeline(bot.sessions, incident_id)] == [EventKind.CREATED]


def test_attach_caption_over_1000_characters_is_refused_inline_before_downloading(
    bot: Bot,
) -> None:
    incident_id, card_ts = with_card(bot.sessions, bot.fake)
    file = bot.fake.add_file("graph.png", image("PNG"), "image/png")
    modal = open_attach_modal(bot, card_ts)

    answer = submit(bot, modal, {ids.FILES_BLOCK: [file], ids.CAPTION_BLOCK: "x" * 1_001})

    assert answer is not None and answer["response_action"] == "errors"
    assert list(answer["errors"]) == [ids.CAPTION_BLOCK]
    assert "1,000" in answer["errors"][ids.CAPTION_BLOCK]
    assert shots(bot.sessions, incident_id) == []
    assert bot.fake.downloads == []
    # Exactly at the limit is fine.
    assert submit(bot, modal, {ids.FILES_BLOCK: [file], ids.CAPTION_BLOCK: "y" * 1_000}) is None
    wait_for_reply(bot.fake, card_ts, 0)
    assert [s.caption for s in shots(bot.sessions, incident_id)] == ["y" * 1_000]


def test_a_slack_500_during_download_is_told_and_nothing_is_half_stored(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    good = fake.add_file("good.png", image("PNG", seed=8), "image/png")
    failing = fake.add_file("failing.png", image("PNG", seed=9), "image/png")
    modal = open_attach_modal(bot, card_ts)
    fake.fail("download", status=500, times=1)

    assert submit(bot, modal, {ids.FILES_BLOCK: [failing, good]}) is None
    told = wait_for_dm(fake, 0)
    reply = wait_for_reply(fake, card_ts, 0)

    assert [s.filename for s in shots(sessions, incident_id)] == ["good.png"]
    assert "Not kept: failing.png" in told and "HTTP 500" in told
    assert f"Kept 1 screenshot(s) on INC-{incident_id}." in told
    assert "Not kept: failing.png" in reply and "attached 1 screenshot" in reply


def test_slacks_login_page_instead_of_the_file_is_explained(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    file = fake.add_file("graph.png", image("PNG"), "image/png")
    modal = open_attach_modal(bot, card_ts)
    fake.scopes.discard("files:read")  # Slack then answers downloads with its sign-in page

    assert submit(bot, modal, {ids.FILES_BLOCK: [file]}) is None
    told = wait_for_dm(fake, 0)

    assert "login page" in told and "files:read" in told
    assert shots(sessions, incident_id) == []
    assert fake.downloads == [(file["id"], False)]


def test_file_names_are_shown_as_text_and_ping_nobody(bot: Bot) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    good = fake.add_file("<!channel> graph.png", image("PNG", seed=40), "image/png")
    bad = fake.add_file("<!here> notes.png", TEXT, "image/png")
    modal = open_attach_modal(bot, card_ts)

    assert submit(bot, modal, {ids.FILES_BLOCK: [good, bad]}) is None
    told = wait_for_dm(fake, 0)
    reply = wait_for_reply(fake, card_ts, 0)
    shown = json.dumps(ask(bot, f"show {incident_id}")["blocks"], ensure_ascii=False)
    card = json.dumps(fake.message(CHANNEL, card_ts), ensure_ascii=False)

    assert [s.filename for s in shots(sessions, incident_id)] == ["<!channel> graph.png"]
    for text in (told, reply, shown, card):
        assert "<!channel>" not in text and "<!here>" not in text
    assert "&lt;!here&gt; notes.png" in reply
    assert "&lt;!channel&gt; graph.png" in shown and "&lt;!channel&gt; graph.png" in card


def test_a_file_over_max_screenshot_bytes_is_refused_and_the_others_kept(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> None:
    fake, sessions = fake_slack, committing_sessions
    cap = 8_192
    small = image("PNG", (20, 20), seed=41)
    assert len(small) < cap
    big = (image("PNG", (64, 64), seed=42) * 3)[: cap + 1]
    incident_id, card_ts = with_card(sessions, fake)
    files = [
        fake.add_file("big.png", big, "image/png"),
        fake.add_file("small.png", small, "image/png"),
    ]

    with running_bot(fake, engine, sessions, max_screenshot_bytes=cap) as bot:
        modal = open_attach_modal(bot, card_ts)
        assert submit(bot, modal, {ids.FILES_BLOCK: files}) is None
        told = wait_for_dm(fake, 0)
        reply = wait_for_reply(fake, card_ts, 0)

    assert [s.content for s in shots(sessions, incident_id)] == [small]
    assert "Not kept: big.png" in told and "limit" in told
    assert "Not kept: big.png" in reply and "attached 1 screenshot" in reply
    assert [file_id for file_id, _ in fake.downloads] == [files[1]["id"]]


class Recorder:
    """Someone else's HTTP server: records every request it gets (it should get none)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                recorder.requests.append({"path": self.path, **dict(self.headers.items())})
                body = image("PNG", seed=99)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/files-pri/T1-F1/x.png"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def elsewhere() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.close()


@pytest.mark.parametrize("way", ["files.info answer", "file_input object"])
def test_a_download_address_on_another_host_never_gets_the_token(
    bot: Bot, elsewhere: Recorder, way: str
) -> None:
    fake, sessions = bot.fake, bot.sessions
    incident_id, card_ts = with_card(sessions, fake)
    evil = {
        "id": "F0EVIL00001",
        "name": "evil.png",
        "mimetype": "image/png",
        "size": 1000,
        "file_access": "visible",
        "url_private": elsewhere.url,
        "url_private_download": elsewhere.url,
    }
    if way == "files.info answer":
        # The message names the file; files.info (asked for fresh data) points elsewhere.
        fake.set_handler("files.info", lambda params: {"file": evil})
        message = fake.add_message(CHANNEL, "see", files=[{"id": evil["id"], "name": "evil.png"}])
        reply, told = attach_message(bot, message, incident_id, card_ts)
        assert [p["file"] for p in fake.calls_to("files.info")] == [evil["id"]]
    else:
        modal = open_attach_modal(bot, card_ts)
        assert submit(bot, modal, {ids.FILES_BLOCK: [evil]}) is None
        told = wait_for_dm(fake, 0)
        reply = wait_for_reply(fake, card_ts, 0)

    assert elsewhere.requests == []
    assert shots(sessions, incident_id) == []
    assert "not on Slack's file host" in told
    assert "attached 0 screenshots" in reply and "Not kept" in reply


# --- files posted in the card's thread -----------------------------------------------------------


def thread_file_event(
    fake: FakeSlack, card_ts: str, text: str, files: list[dict[str, Any]], user: str = BOB
) -> dict[str, Any]:
    """A reply with files under the card, as Slack stores it and then sends it as an event."""
    message = fake.add_message(CHANNEL, text, user=user, files=files, thread_ts=card_ts)
    return payloads.event_callback(
        payloads.message_event(
            text, user=user, ts=message["ts"], thread_ts=card_ts, files=message["files"]
        )
    )


def test_files_posted_in_the_cards_thread_are_attached_once_even_when_redelivered(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> None:
    fake, sessions = fake_slack, committing_sessions
    fake.add_user(BOB, "bob")
    incident_id, card_ts = with_card(sessions, fake)
    graph = image("PNG", (33, 22), seed=10)
    envelope = thread_file_event(
        fake, card_ts, "the graph", [fake.add_file("graph.png", graph, "image/png", user=BOB)]
    )

    with running_bot(fake, engine, sessions, attach_thread_files=True) as bot:
        status, _, body = bot.post(envelope)
        assert status == 200, body
        reply = wait_for_reply(fake, card_ts, 0)
        fake.wait_for(lambda: ephemerals(fake, BOB))
        # Slack did not see the ack in time and sends the same event again.
        status, _, body = bot.post(envelope, retry_num=1, retry_reason="http_timeout")
        assert status == 200, body
    # The bot is stopped: whatever it was going to do about the retry is done.

    [kept] = shots(sessions, incident_id)
    assert (kept.content, kept.uploaded_by, kept.width, kept.height) == (graph, BOB, 33, 22)
    assert kept.caption == "the graph"
    assert kept.source_permalink == permalink(fake, envelope["event"]["ts"])
    assert f"<@{BOB}> attached 1 screenshot" in reply
    assert replies(fake, card_ts) == [reply]
    assert len(fake.downloads) == 1
    assert ephemerals(fake, BOB) == [f"Kept 1 screenshot(s) on INC-{incident_id}."]
    kinds = [e.kind for e in timeline(sessions, incident_id)]
    assert kinds.count(EventKind.SCREENSHOT_ADDED) == 1


@pytest.mark.parametrize(
    ("setting", "where", "poster"),
    [(False, "card thread", BOB), (True, "another thread", BOB), (True, "card thread", BOT_USER)],
    ids=["setting off", "not under a card", "the bot's own re-post"],
)
def test_thread_files_are_left_alone_when_off_not_under_a_card_or_posted_by_the_bot(
    fake_slack: FakeSlack,
    engine: Engine,
    committing_sessions: sessionmaker[Session],
    setting: bool,
    where: str,
    poster: str,
) -> None:
    fake, sessions = fake_slack, committing_sessions
    fake.add_user(BOB, "bob")
    incident_id, card_ts = with_card(sessions, fake)
    thread_ts = card_ts if where == "card thread" else fake.add_message(CHANNEL, "chat")["ts"]
    files = [fake.add_file("graph.png", image("PNG"), "image/png", user=poster)]
    envelope = thread_file_event(fake, thread_ts, "a graph", files, user=poster)
    fake.clear_calls()

    with running_bot(fake, engine, sessions, attach_thread_files=setting) as bot:
        status, _, body = bot.post(envelope)
        assert status == 200, body

    assert shots(sessions) == []
    assert fake.downloads == []
    assert [c.method for c in fake.calls if c.method != "auth.test"] == []
    assert [e.kind for e in timeline(sessions, incident_id)] == [EventKind.CREATED]


def test_a_long_message_with_an_image_in_the_cards_thread_still_attaches_the_image(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> None:
    # People write long messages; the image they post with one must not be lost for it.
    fake, sessions = fake_slack, committing_sessions
    fake.add_user(BOB, "bob")
    incident_id, card_ts = with_card(sessions, fake)
    graph = image("PNG", seed=12)
    text = "Timeline of what we saw. " * 60  # 1,500 characters
    envelope = thread_file_event(
        fake, card_ts, text, [fake.add_file("graph.png", graph, "image/png", user=BOB)]
    )

    with running_bot(fake, engine, sessions, attach_thread_files=True) as bot:
        status, _, body = bot.post(envelope)
        assert status == 200, body

    assert [s.content for s in shots(sessions, incident_id)] == [graph]


# --- /incident show, and deleting ----------------------------------------------------------------


def store(
    sessions: sessionmaker[Session], incident_id: int, uploader: str, name: str, data: bytes
) -> int:
    with sessions.begin() as session:
        new_id = screenshots.store_image(
            session, incident_id, Actor(uploader), screenshots.validate_image(name, data)
        )
    assert new_id is not None
    return new_id


def ask(bot: Bot, text: str, user_id: str = USER) -> dict[str, Any]:
    payload = payloads.slash_command("/incident", text, fake=bot.fake, user_id=user_id)
    status, _, body = bot.post(payload)
    assert (status, body) == (200, "")
    bot.fake.wait_for(lambda: bot.fake.responses(payload["response_url"]))
    return bot.fake.responses(payload["response_url"])[0]


def screenshot_rows(answer: dict[str, Any]) -> dict[str, str | None]:
    """Each screenshot line of a `show` answer, with the action of its button (if any)."""
    return {
        block["text"]["text"]: (block.get("accessory") or {}).get("action_id")
        for block in answer["blocks"]
        if block["type"] == "section" and block.get("text", {}).get("text", "").startswith("🖼️")
    }


def click_delete(bot: Bot, answer: dict[str, Any], name: str, user_id: str) -> dict[str, Any]:
    """Press the Delete button on `name`'s line of an ephemeral `show` answer; the reply."""
    block = next(
        b
        for b in answer["blocks"]
        if b["type"] == "section" and name in b.get("text", {}).get("text", "")
    )
    button = block["accessory"]
    act = payloads.action(
        button["action_id"], block_id=block.get("block_id", ""), value=button["value"]
    )
    shown = {"type": "message", "ts": f"{time.time():.6f}", "text": "", "blocks": answer["blocks"]}
    payload = payloads.block_actions(
        act, message=shown, channel_id=CHANNEL, fake=bot.fake, user_id=user_id, is_ephemeral=True
    )
    status, _, body = bot.post(payload)
    assert status == 200, body
    bot.fake.wait_for(lambda: bot.fake.responses(payload["response_url"]))
    return bot.fake.responses(payload["response_url"])[0]


@pytest.fixture
def shown(bot: Bot) -> tuple[Bot, int, str, bytes, bytes]:
    """An incident with a screenshot by USER (graph.png) and one by BOB (photo.jpg), on its card."""
    incident_id, card_ts = with_card(bot.sessions, bot.fake)
    graph, photo = image("PNG", (64, 48), 20), image("JPEG", (120, 90), 21)
    for uploader, name, data in ((USER, "graph.png", graph), (BOB, "photo.jpg", photo)):
        kept = store(bot.sessions, incident_id, uploader, name, data)
        with bot.sessions.begin() as session:
            screenshots.record_attachment(
                session, incident_id, Actor(uploader), screenshots.Attachment(stored=[kept])
            )
    assert not Deliverer(bot.sessions, bot.fake.client()).drain().problems
    assert len(replies(bot.fake, card_ts)) == 2
    return bot, incident_id, card_ts, graph, photo


@pytest.mark.parametrize(
    ("viewer", "deletable"),
    [
        (USER, ["graph.png"]),
        (BOB, ["photo.jpg"]),
        (CAROL, []),
        (ADMIN_ID, ["graph.png", "photo.jpg"]),
    ],
    ids=["uploader of one", "uploader of the other", "someone else", "admin"],
)
def test_show_lists_screenshots_with_delete_only_for_their_uploader_or_an_admin(
    shown: tuple[Bot, int, str, bytes, bytes],
    statements: list[str],
    viewer: str,
    deletable: list[str],
) -> None:
    bot, incident_id, _, graph, photo = shown
    statements.clear()

    answer = ask(bot, f"show {incident_id}", user_id=viewer)

    lines = screenshot_rows(answer)
    assert len(lines) == 2
    graph_line = next(line for line in lines if "graph.png" in line)
    photo_line = next(line for line in lines if "photo.jpg" in line)
    assert f"graph.png · {kib(graph)} · 64x48 · <@{USER}> · <!date^" in graph_line
    assert f"photo.jpg · {kib(photo)} · 120x90 · <@{BOB}> · <!date^" in photo_line
    with_delete = sorted(
        line.split(" · ")[0].removeprefix("🖼️ ")
        for line, action in lines.items()
        if action == ids.DELETE_SCREENSHOT_ACTION
    )
    assert with_delete == deletable
    assert selects_content(statements) == []


def test_delete_from_show_removes_the_screenshot_and_the_timeline_records_it(
    shown: tuple[Bot, int, str, bytes, bytes],
) -> None:
    bot, incident_id, card_ts, _, photo = shown

    answer = click_delete(bot, ask(bot, f"show {incident_id}"), "graph.png", USER)
    reply = wait_for_reply(bot.fake, card_ts, 2)

    assert answer["text"] == f"Deleted graph.png from INC-{incident_id}."
    assert [(s.filename, s.content) for s in shots(bot.sessions, incident_id)] == [
        ("photo.jpg", photo)
    ]
    last = timeline(bot.sessions, incident_id)[-1]
    assert (last.kind, last.actor, last.details["name"]) == (
        EventKind.SCREENSHOT_DELETED,
        USER,
        "graph.png",
    )
    assert f"<@{USER}> deleted the screenshot graph.png" in reply
    card = bot.fake.message(CHANNEL, card_ts)
    assert card is not None
    assert "graph.png" not in json.dumps(card["blocks"]) and "photo.jpg" in json.dumps(
        card["blocks"]
    )
    again = ask(bot, f"show {incident_id}")
    assert [line for line in screenshot_rows(again) if "graph.png" in line] == []
    assert any("deleted the screenshot graph.png" in json.dumps(b) for b in again["blocks"])


def test_delete_by_someone_else_is_refused_and_keeps_the_screenshot(
    shown: tuple[Bot, int, str, bytes, bytes],
) -> None:
    bot, incident_id, _, graph, _ = shown
    # Carol was not offered the button; she sends the admin's one (an old client, a crafted call).
    admin_view = ask(bot, f"show {incident_id}", user_id=ADMIN_ID)

    answer = click_delete(bot, admin_view, "photo.jpg", CAROL)

    assert "Only the screenshot's uploader or an incident admin" in answer["text"]
    assert len(shots(bot.sessions, incident_id)) == 2
    assert EventKind.SCREENSHOT_DELETED not in [e.kind for e in timeline(bot.sessions, incident_id)]
    # The admin may.
    assert click_delete(bot, admin_view, "photo.jpg", ADMIN_ID)["text"].startswith("Deleted")
    assert [s.content for s in shots(bot.sessions, incident_id)] == [graph]


# --- ways out: re-post into the thread, export -----------------------------------------------


def reposted(fake: FakeSlack, card_ts: str) -> list[dict[str, Any]]:
    return [m for m in fake.thread(CHANNEL, card_ts) if m.get("files")]


@pytest.mark.parametrize("way", ["/incident screenshots", "card button"])
def test_stored_screenshots_are_reposted_into_the_cards_thread(
    shown: tuple[Bot, int, str, bytes, bytes], way: str
) -> None:
    bot, incident_id, card_ts, graph, photo = shown
    fake = bot.fake
    fake.clear_calls()

    if way == "card button":
        card = fake.message(CHANNEL, card_ts)
        assert card is not None
        status, _, body = bot.post(
            payloads.block_actions_from(card, ids.SCREENSHOTS_ACTION, channel_id=CHANNEL, fake=fake)
        )
        assert status == 200, body
    else:
        ask(bot, f"screenshots {incident_id}")
    fake.wait_for(lambda: len(reposted(fake, card_ts)) >= 2)

    posts = reposted(fake, card_ts)
    uploaded = [(f["name"], fake.file_content(f["id"])) for m in posts for f in m["files"]]
    assert uploaded == [("graph.png", graph), ("photo.jpg", photo)]
    stored = {s.filename: s.content for s in shots(bot.sessions, incident_id)}
    assert dict(uploaded) == stored
    assert f"INC-{incident_id}" in posts[0]["text"]
    assert len(fake.calls_to("files.completeUploadExternal")) == 2
    assert all(p.get("thread_ts") == card_ts for p in fake.calls_to("files.completeUploadExternal"))


def test_reposting_an_incident_without_screenshots_says_so(bot: Bot) -> None:
    incident_id, card_ts = with_card(bot.sessions, bot.fake)

    ask(bot, f"screenshots {incident_id}")
    told = bot.fake.wait_for(lambda: ephemerals(bot.fake))

    assert told == [f"INC-{incident_id} has no screenshots."]
    assert reposted(bot.fake, card_ts) == []


def run_export(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "bot", "export-screenshots", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_export_writes_the_stored_files_with_their_names_never_overwriting(
    database_url: str,
    engine: Engine,
    committing_sessions: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    sessions = committing_sessions
    with sessions.begin() as session:
        incident_id = incidents.declare(
            session, IncidentDraft(title="Checkout is failing", severity="SEV2"), Actor(USER)
        ).id
        other = incidents.declare(
            session, IncidentDraft(title="Search is slow", severity="SEV3"), Actor(USER)
        ).id
    first, second = image("PNG", seed=30), image("PNG", seed=31)
    photo, sneaky = image("JPEG", seed=32), image("GIF", seed=33)
    first_id = store(sessions, incident_id, USER, "shot.png", first)
    second_id = store(sessions, incident_id, BOB, "shot.png", second)
    store(sessions, incident_id, BOB, "photo.jpg", photo)
    store(sessions, incident_id, BOB, "../../escape.gif", sneaky)
    store(sessions, other, USER, "elsewhere.png", image("PNG", seed=34))
    folder = tmp_path / "export"

    result = run_export(database_url, f"INC-{incident_id}", str(folder))

    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert written.pop("photo.jpg") == photo
    assert written.pop("escape.gif") == sneaky
    assert {first, second} == set(written.values())
    assert "shot.png" in written and len(written) == 2
    kept_first = written["shot.png"] == first
    renamed = written[next(n for n in written if n != "shot.png")]
    assert renamed == (second if kept_first else first)
    assert str(second_id if kept_first else first_id) in next(n for n in written if n != "shot.png")
    assert not (tmp_path / "escape.gif").exists()
    assert len(result.stdout.splitlines()) == 4


@pytest.mark.parametrize(
    ("ref", "said"),
    [("INC-424242", "There is no incident INC-424242."), ("latest", "is not an incident id")],
)
def test_export_of_an_unknown_incident_is_a_clear_error(
    database_url: str, engine: Engine, tmp_path: Path, ref: str, said: str
) -> None:
    folder = tmp_path / "export"

    result = run_export(database_url, ref, str(folder))

    assert result.returncode != 0
    assert said in result.stderr
    assert "Traceback" not in result.stderr
    assert not folder.exists() or list(folder.iterdir()) == []

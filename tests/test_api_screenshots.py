"""The REST API's screenshots (/api/v1/incidents/{id}/screenshots): the rules of images attached
in Slack, the size limit, and serving the bytes back safely."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import Actor, screenshots
from tests.fakeslack import FakeSlack
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.test_api import Caller, error_of, person_caller, token_caller

MAX_BYTES = 200_000


def png(seed: int = 1, size: tuple[int, int] = (40, 30)) -> bytes:
    image = Image.frombytes(
        "RGB", size, bytes((seed * 7 + i) % 256 for i in range(size[0] * size[1] * 3))
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def upload(caller: Caller, incident: int | str, data: bytes, name: str = "shot.png", **form: Any):
    return caller.post(
        f"/incidents/{incident}/screenshots",
        data={"file": (io.BytesIO(data), name), **form},
        content_type="multipart/form-data",
    )


@pytest.fixture
def bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with a small MAX_SCREENSHOT_BYTES, so a file over it is quick to send."""
    with running_bot(fake_slack, engine, committing_sessions, max_screenshot_bytes=MAX_BYTES) as b:
        yield b


@pytest.fixture
def tool(bot: Bot) -> Caller:
    return token_caller(bot)


def test_a_screenshot_is_stored_once_listed_and_served_back_as_it_came(tool: Caller):
    number = tool.declare()["id"]
    image = png()
    answer = upload(tool, f"INC-{number}", image, caption="  the error page  ")
    assert answer.status_code == 201, answer.get_json()
    shot = answer.get_json()
    assert (shot["mime_type"], shot["width"], shot["height"]) == ("image/png", 40, 30)
    assert (shot["size_bytes"], shot["filename"], shot["caption"]) == (
        len(image),
        "shot.png",
        "the error page",
    )
    assert shot["uploaded_by"] == tool.actor and shot["uploaded_by_label"].startswith("API token ")
    path = f"/incidents/{number}/screenshots/{shot['id']}"
    assert shot["url"] == f"/api/v1{path}"
    assert tool.get(f"/incidents/{number}/screenshots").get_json() == {"items": [shot]}
    served = tool.get(path)
    assert served.status_code == 200 and served.data == image
    assert served.headers["Content-Type"] == "image/png"
    assert served.headers["Content-Disposition"] == "inline; filename=shot.png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    event = tool.get(f"/incidents/{number}/timeline").get_json()["items"][-1]
    assert (event["kind"], event["text"], event["details"]["stored"]) == (
        "screenshot_added",
        "the error page",
        [shot["id"]],
    )
    # The same bytes again: the stored one, unchanged, and nothing recorded.
    again = upload(tool, number, image, "again.png", caption="same bytes")
    assert again.status_code == 200
    assert again.get_json() == shot
    assert len(tool.get(f"/incidents/{number}/screenshots").get_json()["items"]) == 1
    kinds = [e["kind"] for e in tool.get(f"/incidents/{number}/timeline").get_json()["items"]]
    assert kinds == ["created", "screenshot_added"]
    # Another incident keeps its own copy.
    other = tool.declare()["id"]
    assert upload(tool, other, png()).status_code == 201


def test_what_is_not_a_usable_image_is_refused_with_the_reason(tool: Caller):
    number = tool.declare()["id"]
    cases = [
        (upload(tool, number, b"just some text"), "not a PNG, JPEG, GIF or WebP image"),
        (upload(tool, number, b""), "the file is empty"),
        (upload(tool, number, png()[:200]), "damaged or truncated"),
        (upload(tool, number, png(), caption="c" * 1_001), "Caption is too long"),
        (upload(tool, number, png(), album="holiday"), "Unknown field"),
        (tool.post(f"/incidents/{number}/screenshots", data={"caption": "no file"}), "file"),
        (tool.post(f"/incidents/{number}/screenshots", data={"file": "not a file"}), "file"),
        (tool.post(f"/incidents/{number}/screenshots", json={"file": "x"}), "file"),
    ]
    for answer, says in cases:
        assert answer.status_code == 422, says
        assert says in str(answer.get_json()), says
    assert tool.get(f"/incidents/{number}/screenshots").get_json()["items"] == []
    assert upload(tool, 999_999, png()).status_code == 404
    assert upload(tool, "INC-x", png()).status_code == 422


def test_an_image_over_the_limit_is_413_even_in_a_body_under_it(tool: Caller):
    number = tool.declare()["id"]
    over = upload(tool, number, b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_BYTES - 7))
    assert over.status_code == 413
    assert error_of(over) == "The image is larger than the 200,000 bytes a screenshot may be."
    # A byte fewer is within the limit, and judged as an image.
    at_limit = upload(tool, number, b"\x89PNG\r\n\x1a\n" + b"\0" * (MAX_BYTES - 8))
    assert at_limit.status_code == 422 and "damaged or truncated" in error_of(at_limit)
    body_over = upload(tool, number, b"\0" * (MAX_BYTES + 70_000))
    assert body_over.status_code == 413
    assert "larger than this endpoint takes" in error_of(body_over)


def test_a_screenshot_is_served_safely_and_only_through_its_incident(bot: Bot, tool: Caller):
    number = tool.declare()["id"]
    # Names come from Slack too, where they are whatever the uploader's file was called.
    with bot.sessions.begin() as session:
        image = screenshots.validate_image('a"b\\c/d\r\nSet-Cookie: x=1.png', png())
        stored = screenshots.store_image(session, number, Actor("U0USER0001"), image)
    served = tool.get(f"/incidents/{number}/screenshots/{stored}")
    assert served.status_code == 200
    assert (
        served.headers["Content-Disposition"] == 'inline; filename="a_b_c_d__Set-Cookie: x=1.png"'
    )
    assert "Set-Cookie" not in served.headers
    accented = upload(tool, number, png(2), "écran.png").get_json()
    served = tool.get(f"/incidents/{number}/screenshots/{accented['id']}")
    assert served.headers["Content-Disposition"] == (
        "inline; filename=ecran.png; filename*=UTF-8''%C3%A9cran.png"
    )
    # Reached only through its own incident.
    elsewhere = tool.declare()["id"]
    for answer in (
        tool.get(f"/incidents/{elsewhere}/screenshots/{accented['id']}"),
        tool.delete(f"/incidents/{elsewhere}/screenshots/{accented['id']}"),
        tool.get(f"/incidents/{number}/screenshots/999999"),
        tool.get(f"/incidents/{number}/screenshots/99999999999999999999"),
        tool.get("/incidents/999999/screenshots"),
    ):
        assert answer.status_code == 404
    assert len(tool.get(f"/incidents/{number}/screenshots").get_json()["items"]) == 2


def test_a_screenshot_is_deleted_by_its_uploader_or_an_admin_only(bot: Bot, tool: Caller):
    number = tool.declare()["id"]
    first = upload(tool, number, png(1)).get_json()["id"]
    second = upload(tool, number, png(2)).get_json()["id"]
    refused = token_caller(bot).delete(f"/incidents/{number}/screenshots/{first}")
    assert refused.status_code == 403
    assert "uploader or an incident admin" in error_of(refused)
    assert tool.delete(f"/incidents/{number}/screenshots/{first}").status_code == 204
    assert (
        person_caller(bot, ADMIN_ID).delete(f"/incidents/{number}/screenshots/{second}").status_code
        == 204
    )
    assert tool.get(f"/incidents/{number}/screenshots").get_json()["items"] == []
    assert tool.delete(f"/incidents/{number}/screenshots/{first}").status_code == 404
    events = tool.get(f"/incidents/{number}/timeline").get_json()["items"]
    deleted = [
        (e["actor"], e["details"]["screenshot_id"])
        for e in events
        if e["kind"] == "screenshot_deleted"
    ]
    assert deleted == [(tool.actor, first), (ADMIN_ID, second)]

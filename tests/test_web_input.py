"""A client's mistakes the parsers let through used to crash a route (500, a traceback logged):
a NUL in a screenshot's caption or file name, JSON nested past Python's stack, a lone surrogate
escape, a multipart part whose name can't be read. Each is now a 4xx with a sentence."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from bot import incidents
from bot.incidents import Actor, screenshots
from db.models import Screenshot
from tests.slackbot import Bot
from tests.test_api import CSRF, Caller, error_of, person_caller, token_caller


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING):
        yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


@pytest.fixture
def browser(slackbot: Bot) -> Caller:
    return person_caller(slackbot)


def stored(bot: Bot) -> int:
    with bot.sessions() as session:
        return session.query(Screenshot).count()


def page_text(answer: TestResponse) -> str:
    return answer.get_data(as_text=True)


# --- A NUL, refused by the domain for every surface --------------------------------------------


def test_the_domain_refuses_a_nul_in_a_caption_or_a_file_name():
    with pytest.raises(incidents.InvalidInput, match="Caption contains a NUL character"):
        screenshots.clean_caption("graph\x00")
    with pytest.raises(screenshots.NotAnImage, match="its name contains a NUL character"):
        screenshots.validate_image("graph\x00.png", png())


def test_a_file_refused_for_a_nul_in_its_name_is_still_recorded_as_refused(session: Session):
    """Slack's attach records the files it did not keep; one named with a NUL too."""
    with session.begin_nested():
        draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV2")
        number = incidents.declare(session, draft, Actor("U0ALICE001")).id
    name = "graph\x00.png"
    with pytest.raises(screenshots.NotAnImage) as refusal:
        screenshots.validate_image(name, png())
    attachment = screenshots.Attachment(refused=[(name, str(refusal.value))])
    screenshots.record_attachment(session, number, Actor("U0ALICE001"), attachment)
    session.flush()
    event = incidents.timeline(session, number)[-1]
    assert event.details["refused"] == [
        {
            "name": "graph\ufffd.png",
            "reason": "its name contains a NUL character, which isn't allowed",
        }
    ]


@pytest.mark.parametrize(
    "filename, caption, message",
    [
        ("graph.png", "before\x00after", "Caption contains a NUL character"),
        ("graph\x00.png", None, "its name contains a NUL character"),
    ],
)
def test_a_nul_in_an_upload_is_a_422(
    slackbot: Bot,
    tool: Caller,
    browser: Caller,
    no_errors_logged: None,
    filename: str,
    caption: str | None,
    message: str,
):
    number = tool.declare()["id"]
    extra = {"caption": caption} if caption else {}
    api = tool.post(
        f"/incidents/{number}/screenshots", data={"file": (io.BytesIO(png()), filename), **extra}
    )
    assert api.status_code == 422 and message in error_of(api)
    page = browser.client.post(
        f"/incidents/{number}/screenshots",
        data={"csrf_token": CSRF, "screenshot": (io.BytesIO(png()), filename), **extra},
    )
    assert page.status_code == 422 and message in page_text(page)
    assert stored(slackbot) == 0


def test_an_unreadable_image_is_refused_without_pillows_object_names(
    tool: Caller, no_errors_logged: None
):
    number = tool.declare()["id"]
    broken = png()[:16] + b"\x00" * 64  # a PNG signature, then nothing Pillow can identify
    answer = tool.post(
        f"/incidents/{number}/screenshots", data={"file": (io.BytesIO(broken), "graph.png")}
    )
    assert answer.status_code == 422
    assert error_of(answer) == "the image is damaged or truncated"


# --- JSON the parser accepts but nothing can keep ----------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("[" * 1000 + "]" * 1000, "nested too deeply"),
        ('{"title":' * 1000 + '"x"' + "}" * 1000, "nested too deeply"),
        ('{"title": "Checkout down", "severity": ' + "1" * 5000 + "}", "too many digits"),
        ('{"title": "abc\\ud800", "severity": "SEV2"}', "lone surrogate"),
        ('{"title": "Checkout down", "severity": "SEV2", "service": ["\\udfff"]}', "surrogate"),
    ],
)
def test_json_the_parser_reads_but_nothing_can_keep_is_a_400(
    slackbot: Bot, tool: Caller, no_errors_logged: None, body: str, message: str
):
    number = tool.declare()["id"]
    json_body = {"headers": {"Content-Type": "application/json"}, "data": body}
    for method, path in [
        ("POST", "/incidents"),
        ("PATCH", f"/incidents/{number}"),
        ("POST", f"/incidents/{number}/notes"),
        ("POST", "/intake"),
    ]:
        answer = tool.call(method, path, **json_body)
        assert answer.status_code == 400, (path, answer.get_json())
        assert message in error_of(answer)
    with slackbot.sessions() as session:
        assert [e.kind.value for e in incidents.timeline(session, number)] == ["created"]


def test_a_lone_surrogate_in_a_form_or_a_query_string_arrives_as_text(
    tool: Caller, browser: Caller, no_errors_logged: None
):
    number = tool.declare()["id"]
    assert tool.get("/incidents?q=abc%ED%A0%80").status_code == 200
    assert browser.client.get("/incidents?q=abc%ED%A0%80&service=%ED%A0%80").status_code == 200
    answer = browser.client.post(
        f"/incidents/{number}/notes",
        data=f"csrf_token={CSRF}&text=abc%ED%A0%80".encode(),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 302
    # Werkzeug never decodes percent-escapes to a surrogate: the note is text PostgreSQL keeps.
    [note] = tool.get(f"/incidents/{number}/notes").get_json()["items"]
    assert note["text"].startswith("abc") and note["text"].encode()


def test_a_moment_past_the_year_9999_in_utc_is_a_422(tool: Caller, no_errors_logged: None):
    answer = tool.get("/stats?since=9999-12-31T23:00:00-05:00")
    assert answer.status_code == 422
    assert answer.get_json()["detail"]["query"]["since"] == [
        "That moment is outside the years 1 to 9999 in UTC."
    ]


# --- Multipart parts werkzeug can't name -------------------------------------------------------


def _multipart(*parts: bytes) -> dict[str, Any]:
    body = b"".join(b"--B\r\n" + part + b"\r\n" for part in parts) + b"--B--\r\n"
    return {"data": body, "content_type": "multipart/form-data; boundary=B"}


def test_a_part_whose_name_ends_in_a_backslash_is_a_400(
    slackbot: Bot, tool: Caller, browser: Caller, no_errors_logged: None
):
    number = tool.declare()["id"]
    image = b'Content-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n' + png()
    unnamed = b'Content-Disposition: form-data; name="caption\\"\r\n\r\nhello'
    api = tool.post(f"/incidents/{number}/screenshots", **_multipart(image, unnamed))
    assert api.status_code == 400
    assert error_of(api) == "A part of the form has a name that can't be read."
    csrf = b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n' + CSRF.encode()
    page = browser.client.post(f"/incidents/{number}/screenshots", **_multipart(csrf, unnamed))
    assert page.status_code == 400
    assert "A part of the form has a name that can&#39;t be read." in page_text(page)
    assert stored(slackbot) == 0

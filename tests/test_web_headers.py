"""What every web answer carries and links to: no framing by other sites, no type sniffing,
links from PUBLIC_URL or relative (never from the request's Host header), and ids that are ASCII
digits only."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, screenshots
from bot.slack.listeners.common import integer
from tests.fakeslack import FakeSlack
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.test_api import Caller, error_of, person_caller, token_caller

ADMIN = Actor.of(ADMIN_ID, [ADMIN_ID])
PUBLIC_URL = "https://incidents.example.com"
EVIL = {"Host": "evil.example"}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "green").save(out, "PNG")
    return out.getvalue()


def with_note_and_screenshot(bot: Bot) -> tuple[int, int, int]:
    with bot.sessions.begin() as session:
        draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV2")
        number = incidents.declare(session, draft, ADMIN).id
        note = incidents.add_note(session, number, ADMIN, "rolled back the deploy").id
        image = screenshots.validate_image("graph.png", _png())
        shot = screenshots.attach_image(session, number, ADMIN, image)
    assert shot is not None
    return number, note, shot


# --- Framing and sniffing ----------------------------------------------------------------------


def test_every_answer_refuses_framing_and_sniffing(slackbot: Bot):
    number, _, shot = with_note_and_screenshot(slackbot)
    browser, stranger = person_caller(slackbot), slackbot.web.test_client()
    answers = {
        "sign-in page": stranger.get("/sign-in"),
        "redirect to sign in": stranger.get("/incidents"),
        "list": browser.client.get("/incidents"),
        "incident page": browser.client.get(f"/incidents/{number}"),
        "missing page": browser.client.get("/incidents/424242"),
        "unknown path": browser.client.get("/no/such/page"),
        "forged form": browser.client.post(f"/incidents/{number}/notes", data={"text": "hi"}),
        "image": browser.client.get(f"/incidents/{number}/screenshots/{shot}"),
        "API": browser.get(f"/incidents/{number}"),
        "API error": browser.get("/incidents/INC-0"),
        "API unauthorized": stranger.get("/api/v1/incidents"),
    }
    for name, answer in answers.items():
        assert answer.headers.get("X-Frame-Options") == "DENY", name
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", name
        assert "frame-ancestors 'none'" in answer.headers.get("Content-Security-Policy", ""), name
    # The image keeps its own policy too: opened on its own, it may run nothing.
    assert "sandbox" in answers["image"].headers["Content-Security-Policy"]


# --- Links -------------------------------------------------------------------------------------


def links_in_answers(bot: Bot, headers: dict[str, str]) -> dict[str, str]:
    number, _, _ = with_note_and_screenshot(bot)
    tool: Caller = token_caller(bot)
    declared = tool.post(
        "/incidents", json={"title": "Payments down", "severity": "SEV3"}, headers=headers
    )
    [shot] = tool.get(f"/incidents/{number}/screenshots", headers=headers).get_json()["items"]
    postmortem = tool.get(f"/incidents/{number}/postmortem", headers=headers)
    return {
        "location": declared.headers["Location"],
        "url": declared.get_json()["url"],
        "listed": tool.get("/incidents", headers=headers).get_json()["items"][0]["url"],
        "screenshot": shot["url"],
        "postmortem": postmortem.get_data(as_text=True),
    }


def test_without_public_url_links_are_relative_whatever_the_host_says(slackbot: Bot):
    links = links_in_answers(slackbot, EVIL)
    assert links["location"].startswith("/api/v1/incidents/")
    assert links["url"].startswith("/incidents/") and links["listed"].startswith("/incidents/")
    assert links["screenshot"].startswith("/api/v1/incidents/")
    assert "evil.example" not in links["postmortem"] and "Incident page" not in links["postmortem"]


@pytest.fixture
def public_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    with running_bot(fake_slack, engine, committing_sessions, public_url=PUBLIC_URL) as bot:
        yield bot


def test_with_public_url_links_are_absolute_from_it_whatever_the_host_says(public_bot: Bot):
    links = links_in_answers(public_bot, EVIL)
    for name in ("location", "url", "listed", "screenshot"):
        assert links[name].startswith(f"{PUBLIC_URL}/"), (name, links[name])
    assert f"Incident page: <{PUBLIC_URL}/incidents/" in links["postmortem"]
    assert f"]({PUBLIC_URL}/incidents/" in links["postmortem"]
    assert "evil.example" not in links["postmortem"]


# --- Ids: ASCII digits only --------------------------------------------------------------------


# Fullwidth, Arabic-Indic and Devanagari digits, and an ASCII id with one Arabic-Indic digit.
@pytest.mark.parametrize(
    "foreign", ["INC-\uff11\uff12", "\u0661\u0662", "#\u0967\u0968", "12\u0664"]
)
def test_an_id_in_another_scripts_digits_is_not_an_incident_id(foreign: str):
    with pytest.raises(incidents.InvalidInput, match="is not an incident id"):
        incidents.parse_incident_id(foreign)


def test_slack_values_in_another_scripts_digits_are_not_numbers():
    assert integer({"page": "12"}, "page") == 12
    assert integer({"page": "\uff11\uff12"}, "page") is None
    assert integer({"page": "²"}, "page") is None  # isdigit() says yes, int() says no


def test_the_web_reads_ids_in_ascii_digits_only(slackbot: Bot):
    number, note, shot = with_note_and_screenshot(slackbot)
    assert number == 1 and note < 10 and shot == 1  # one digit each, to write in another script
    wide = {n: chr(0xFF10 + n) for n in range(10)}  # fullwidth digits: U+FF11 is 1
    tool = token_caller(slackbot, admin=True)
    answer = tool.get(f"/incidents/INC-{wide[number]}")
    assert answer.status_code == 422 and "is not an incident id" in error_of(answer)
    assert tool.get(f"/incidents/{number}/screenshots/{wide[shot]}").status_code == 404
    assert tool.delete(f"/incidents/{number}/notes/{wide[note]}").status_code == 404
    assert tool.delete(f"/incidents/{number}/screenshots/{wide[shot]}").status_code == 404
    browser: Any = person_caller(slackbot, ADMIN_ID).client
    assert browser.get(f"/incidents/{wide[number]}").status_code == 422
    assert browser.get(f"/incidents/{number}/screenshots/{wide[shot]}").status_code == 404
    with slackbot.sessions() as session:
        kinds = [e.kind.value for e in incidents.timeline(session, number)]
    assert "note_deleted" not in kinds and "screenshot_deleted" not in kinds

"""A change to an incident someone else holds locked past the web's lock timeout: the page and
the API say it is busy (503, with when to try again), as Slack's ack does, and log no error."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot import incidents
from bot.incidents import Actor
from db.models import Incident, IncidentEvent, Status
from tests.slackbot import ADMIN_ID, Bot
from tests.test_api import person_caller, token_caller

BUSY = (
    "That incident is busy (someone else is changing it right now), so nothing was changed. "
    "Please try again in a moment."
)


def test_a_locked_incident_is_busy_on_the_pages_and_the_api(
    slackbot: Bot, caplog: pytest.LogCaptureFixture
):
    with slackbot.sessions.begin() as session:
        draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV2")
        number = incidents.declare(session, draft, Actor.of(ADMIN_ID, [ADMIN_ID])).id
    browser, tool = person_caller(slackbot), token_caller(slackbot)

    with caplog.at_level(logging.WARNING), slackbot.sessions.begin() as holder:
        holder.execute(select(Incident).where(Incident.id == number).with_for_update()).one()
        page = browser.client.post(
            f"/incidents/{number}/status",
            data={"csrf_token": browser.headers["X-CSRF-Token"], "status": "investigating"},
        )
        api = tool.post(f"/incidents/{number}/notes", json={"text": "rolled back the deploy"})

    assert page.status_code == 503 and api.status_code == 503
    assert BUSY in page.get_data(as_text=True)
    assert api.get_json()["message"] == BUSY
    assert page.headers["Retry-After"] == api.headers["Retry-After"] == "2"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with slackbot.sessions() as session:
        assert session.get(Incident, number).status == Status.OPEN
        assert [e.kind.value for e in incidents.timeline(session, number)] == ["created"]
    # Once the row is free the same change goes through.
    assert tool.post(f"/incidents/{number}/notes", json={"text": "rolled back"}).status_code == 201


def test_a_wait_for_any_other_lock_is_busy_too(slackbot: Bot, caplog: pytest.LogCaptureFixture):
    """Deleting a note locks the note's row before the incident's: someone holding the note is
    answered busy as well, not with a 500."""
    admin = Actor.of(ADMIN_ID, [ADMIN_ID])
    with slackbot.sessions.begin() as session:
        draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV2")
        number = incidents.declare(session, draft, admin).id
        note = incidents.add_note(session, number, admin, "rolled back the deploy").id
    browser, tool = person_caller(slackbot, ADMIN_ID), token_caller(slackbot, admin=True)

    with caplog.at_level(logging.WARNING), slackbot.sessions.begin() as holder:
        holder.execute(select(IncidentEvent).where(IncidentEvent.id == note).with_for_update())
        page = browser.client.post(
            f"/incidents/{number}/notes/{note}/delete",
            data={"csrf_token": browser.headers["X-CSRF-Token"]},
        )
        api = tool.delete(f"/incidents/{number}/notes/{note}")

    assert (page.status_code, api.status_code) == (503, 503)
    assert BUSY in page.get_data(as_text=True) and api.get_json()["message"] == BUSY
    assert page.headers["Retry-After"] == api.headers["Retry-After"] == "2"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with slackbot.sessions() as session:
        assert session.get(IncidentEvent, note).deleted_at is None

"""Rules that once differed by surface, now kept by the domain and refused alike in Slack, on the
pages and in the API: resolving needs a resolution; a closed incident is final for non-admins,
its notes and screenshots too; a note or screenshot is reached only through its own incident."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import (
    Actor,
    IncidentDraft,
    InvalidInput,
    NotFound,
    PermissionDenied,
    screenshots,
)
from db.models import Incident, IncidentEvent, Screenshot, Status
from tests.slackbot import Bot
from tests.steps import FIXED
from tests.test_api import Caller, error_of, token_caller
from tests.test_pages import client, post, problem, sign_in  # noqa: F401 (client: a fixture)
from tests.test_slack_commands import ask

ALICE = Actor("U0ALICE")
ADMIN = Actor("U0ADMIN", is_admin=True)


def png(color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(out, "PNG")
    return out.getvalue()


def declare(session: Session, title: str = "Checkout is failing") -> Incident:
    return incidents.declare(session, IncidentDraft(title=title, severity="SEV3"), ALICE)


def closed(session: Session) -> Incident:
    incident = declare(session)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED)
    return incident


def snapshot(session: Session, incident_id: int) -> tuple[Any, ...]:
    session.expire_all()
    incident = session.get_one(Incident, incident_id)
    events = session.scalar(
        select(func.count())
        .select_from(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
    )
    shots = session.scalar(
        select(func.count()).select_from(Screenshot).where(Screenshot.incident_id == incident_id)
    )
    return incident.status, incident.resolution, incident.resolved_at, events, shots


# --- The domain ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [Status.OPEN, Status.INVESTIGATING, Status.MITIGATED])
@pytest.mark.parametrize("target", [Status.RESOLVED, Status.CLOSED])
@pytest.mark.parametrize("resolution", [None, "", "   "])
def test_resolving_without_a_resolution_is_refused_and_changes_nothing(
    session: Session, start: Status, target: Status, resolution: str | None
):
    incident = declare(session)
    if start != Status.OPEN:
        incidents.change_status(session, incident.id, start, ALICE)
    before = snapshot(session, incident.id)
    with pytest.raises(InvalidInput, match="a resolution is needed") as refused:
        incidents.change_status(session, incident.id, target, ALICE, resolution=resolution)
    assert refused.value.field == "resolution"
    assert snapshot(session, incident.id) == before


def test_a_resolution_given_now_or_already_recorded_resolves(session: Session):
    given = declare(session)
    incidents.change_status(session, given.id, "resolved", ALICE, resolution="Restarted the pods")
    assert (given.status, given.resolution) == (Status.RESOLVED, "Restarted the pods")
    # Closing a resolved incident resolves nothing new: it asks for nothing.
    incidents.change_status(session, given.id, "closed", ALICE)
    assert given.status == Status.CLOSED
    recorded = declare(session)
    incidents.edit(session, recorded.id, ALICE, {"resolution": "Failed over to the replica"})
    incidents.change_status(session, recorded.id, "resolved", ALICE)
    assert recorded.status == Status.RESOLVED


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_resolved_incident_keeps_its_resolution(session: Session, status: str):
    incident = declare(session)
    incidents.change_status(session, incident.id, status, ALICE, resolution=FIXED)
    for emptied in (None, "", "  "):
        with pytest.raises(InvalidInput, match="can be reworded but not removed"):
            incidents.edit(session, incident.id, ADMIN, {"resolution": emptied})
    assert incident.resolution == FIXED
    incidents.edit(session, incident.id, ADMIN, {"resolution": "Failed over to the replica"})
    assert incident.resolution == "Failed over to the replica"
    # Reopened, it may be emptied again: it is no longer resolved.
    incidents.change_status(session, incident.id, "investigating", ADMIN)
    incidents.edit(session, incident.id, ADMIN, {"resolution": None})
    assert incident.resolution is None


def test_a_closed_incidents_notes_and_screenshots_are_for_admins_only(session: Session):
    incident = declare(session)
    note = incidents.add_note(session, incident.id, ALICE, "Rolled back")
    image = screenshots.validate_image("graph.png", png())
    shot = screenshots.attach_image(session, incident.id, ALICE, image)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED)
    before = snapshot(session, incident.id)
    refusals = [
        lambda actor: incidents.add_note(session, incident.id, actor, "After the fact"),
        lambda actor: incidents.delete_note(session, note.id, actor),
        lambda actor: screenshots.attach_image(
            session, incident.id, actor, screenshots.validate_image("b.png", png("blue"))
        ),
        lambda actor: screenshots.delete_screenshot(session, shot, actor),
        lambda actor: screenshots.check_can_attach(session, incident.id, actor, None),
    ]
    for change in refusals:
        with pytest.raises(PermissionDenied, match="is closed; only an incident admin"):
            change(ALICE)
        assert snapshot(session, incident.id) == before
    for change in refusals:
        change(ADMIN)
    assert note.deleted_by == ADMIN.user_id


def test_a_note_or_screenshot_is_reached_only_through_its_own_incident(session: Session):
    mine, other = declare(session), declare(session, "Search is slow")
    note = incidents.add_note(session, other.id, ALICE, "On the other one")
    shot = screenshots.attach_image(
        session, other.id, ALICE, screenshots.validate_image("graph.png", png())
    )
    before = snapshot(session, other.id)
    with pytest.raises(NotFound, match=f"INC-{mine.id} has no note {note.id}"):
        incidents.delete_note(session, note.id, ALICE, incident_id=mine.id)
    with pytest.raises(NotFound, match=f"INC-{mine.id} has no screenshot {shot}"):
        screenshots.delete_screenshot(session, shot, ALICE, incident_id=f"INC-{mine.id}")
    assert snapshot(session, other.id) == before
    assert note.text == "On the other one"
    incidents.delete_note(session, note.id, ALICE, incident_id=other.id)
    assert note.deleted_by == ALICE.user_id


# --- The surfaces say the same ------------------------------------------------------------------


def test_the_api_refuses_what_slack_refuses(slackbot: Bot):
    tool: Caller = token_caller(slackbot)
    number = tool.declare()["id"]
    unsaid = tool.post(f"/incidents/{number}/status", json={"status": "resolved"})
    assert unsaid.status_code == 422
    assert error_of(unsaid) == f"Say what fixed INC-{number}: a resolution is needed to resolve it."
    assert tool.get(f"/incidents/{number}").get_json()["status"] == "open"
    blank = {"status": "resolved", "resolution": "  "}
    assert tool.post(f"/incidents/{number}/status", json=blank).status_code == 422

    closing = {"status": "closed", "resolution": FIXED}
    assert tool.post(f"/incidents/{number}/status", json=closing).status_code == 200
    note = tool.post(f"/incidents/{number}/notes", json={"text": "After the fact"})
    assert note.status_code == 403 and "only an incident admin" in error_of(note)
    shot = tool.post(
        f"/incidents/{number}/screenshots",
        data={"file": (io.BytesIO(png()), "graph.png")},
        content_type="multipart/form-data",
    )
    assert shot.status_code == 403 and "only an incident admin" in error_of(shot)
    timeline = tool.get(f"/incidents/{number}/timeline").get_json()["items"]
    assert [e["kind"] for e in timeline] == ["created", "status_changed"]
    admin = token_caller(slackbot, admin=True)
    assert (
        admin.post(f"/incidents/{number}/notes", json={"text": "Review notes"}).status_code == 201
    )


def test_the_pages_refuse_what_slack_refuses(slackbot: Bot, client: Any):  # noqa: F811
    sign_in(client)
    with slackbot.sessions.begin() as session:
        mine, other = declare(session).id, declare(session, "Search is slow").id
        note = incidents.add_note(session, other, ALICE, "On the other one").id
    unsaid = post(client, f"/incidents/{mine}/status", status="resolved", resolution="")
    assert unsaid.status_code == 422
    assert "a resolution is needed to resolve it" in problem(unsaid)
    wrong = post(client, f"/incidents/{mine}/notes/{note}/delete")
    assert wrong.status_code == 404
    assert f"INC-{mine} has no note {note}." in problem(wrong)
    with slackbot.sessions() as session:
        assert session.get_one(IncidentEvent, note).text == "On the other one"
        assert session.get_one(Incident, mine).status == Status.OPEN


def test_slack_commands_refuse_notes_on_a_closed_incident(slackbot: Bot):
    with slackbot.sessions.begin() as session:
        number = closed(session).id
    reply = ask(slackbot, f"note {number} after the fact")
    assert reply["text"] == f"INC-{number} is closed; only an incident admin can change it."
    with slackbot.sessions() as session:
        assert [e.kind.value for e in incidents.timeline(session, number)] == [
            "created",
            "status_changed",
        ]

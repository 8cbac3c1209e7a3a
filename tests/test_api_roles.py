"""The REST API's roles and structured updates: PUT /incidents/{id}/roles/{role}, POST and GET
/incidents/{id}/updates, and what an incident's answer says of them (roles, latest_update,
next_update_at, update_overdue), through the real web app on the fake Slack's bot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot import incidents
from bot.settings import parse_role_rules
from db.models import EventKind
from tests.slackbot import Bot, running_bot
from tests.test_api import Caller, error_of, person_caller, token_caller

BOB, CAROL = "U0BOB00001", "U0CAROL001"


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


@pytest.fixture
def admin(slackbot: Bot) -> Caller:
    return token_caller(slackbot, admin=True)


def put_role(caller: Caller, number: int, role: str, body: Any) -> Any:
    return caller.call("PUT", f"/incidents/{number}/roles/{role}", json=body)


def field_of(answer: Any) -> str | None:
    return answer.get_json()["detail"].get("field")


def events(bot: Bot, number: int, kind: EventKind) -> list[Any]:
    with bot.sessions() as session:
        return [e for e in incidents.timeline(session, number) if e.kind == kind]


# --- The incident's answer ---------------------------------------------------------------------


def test_an_incident_names_every_role_in_order_and_has_no_update_yet(tool: Caller):
    declared = tool.declare(owner=BOB)
    assert list(declared["roles"]) == ["lead", "comms", "scribe"]
    assert declared["roles"] == {"lead": BOB, "comms": None, "scribe": None}
    assert declared["owner"] == BOB
    assert declared["latest_update"] is None
    assert declared["next_update_at"] is None
    assert declared["update_overdue"] is False


def test_roles_follow_the_setting(fake_slack: Any, engine: Any, committing_sessions: Any):
    rules = parse_role_rules({"INCIDENT_ROLES": "ops=Operations: runs the fixes"})
    with running_bot(fake_slack, engine, committing_sessions, role_rules=rules) as bot:
        caller = token_caller(bot)
        number = caller.declare()["id"]
        assert caller.get(f"/incidents/{number}").get_json()["roles"] == {"lead": None, "ops": None}
        assert put_role(caller, number, "comms", {"user": BOB}).status_code == 422


# --- Roles -------------------------------------------------------------------------------------


def test_a_role_is_given_changed_and_left_to_nobody(slackbot: Bot):
    person = person_caller(slackbot)
    number = person.declare()["id"]

    given = put_role(person, number, "comms", {"user": BOB})
    assert given.status_code == 200, given.get_json()
    assert given.get_json()["roles"]["comms"] == BOB
    assert put_role(person, number, "comms", {"user": CAROL}).get_json()["roles"]["comms"] == CAROL
    cleared = put_role(person, number, "comms", {"user": None})
    assert cleared.status_code == 200 and cleared.get_json()["roles"]["comms"] is None

    given_events = events(slackbot, number, EventKind.ROLE_ASSIGNED)
    moves = [(e.field, e.from_value, e.to_value) for e in given_events]
    assert moves == [("comms", None, BOB), ("comms", BOB, CAROL), ("comms", CAROL, None)]
    assert all(e.actor == person.actor for e in given_events)


def test_the_lead_is_the_owner_and_a_handoff_carries_its_summary(tool: Caller, slackbot: Bot):
    number = tool.declare()["id"]
    led = put_role(tool, number, "lead", {"user": BOB})
    assert led.status_code == 200, led.get_json()
    assert (led.get_json()["owner"], led.get_json()["roles"]["lead"]) == (BOB, BOB)

    handed = put_role(tool, number, "LEAD", {"user": CAROL, "handoff": "DB failover half done"})
    assert handed.status_code == 200, handed.get_json()
    assert handed.get_json()["owner"] == CAROL
    last = events(slackbot, number, EventKind.ASSIGNED)[-1]
    assert (last.field, last.from_value, last.to_value) == ("owner", BOB, CAROL)
    assert last.details.get("handoff") == "DB failover half done"
    assert tool.get(f"/incidents/{number}").get_json()["roles"]["lead"] == CAROL


@pytest.mark.parametrize(
    "role, body, status, field, says",
    [
        ("pilot", {"user": BOB}, 422, "role", "There is no role 'pilot'"),
        ("comms", {}, 422, None, "user"),
        ("comms", {"user": "<!channel>"}, 422, None, ""),
        ("comms", {"user": 42}, 422, None, "user"),
        ("comms", {"user": BOB, "extra": 1}, 422, None, "extra"),
        ("lead", {"user": BOB, "handoff": "x" * 501}, 422, None, "handoff"),
    ],
)
def test_a_bad_role_request_is_refused_and_changes_nothing(
    tool: Caller, slackbot: Bot, role: str, body: Any, status: int, field: str | None, says: str
):
    number = tool.declare()["id"]
    answer = put_role(tool, number, role, body)
    assert answer.status_code == status, answer.get_json()
    assert says in str(answer.get_json())
    if field:
        assert field_of(answer) == field
    assert tool.get(f"/incidents/{number}").get_json()["roles"] == {
        "lead": None,
        "comms": None,
        "scribe": None,
    }
    assert events(slackbot, number, EventKind.ROLE_ASSIGNED) == []


def test_giving_a_role_to_its_holder_a_missing_or_closed_incident_is_refused(
    tool: Caller, admin: Caller
):
    number = tool.declare()["id"]
    assert put_role(tool, number, "scribe", {"user": BOB}).status_code == 200
    again = put_role(tool, number, "scribe", {"user": BOB})
    assert again.status_code == 422 and "Nothing changed" in error_of(again)
    assert put_role(tool, 999999, "scribe", {"user": BOB}).status_code == 404
    tool.post(f"/incidents/{number}/status", json={"status": "closed", "resolution": "gone"})
    closed = put_role(tool, number, "scribe", {"user": CAROL})
    assert closed.status_code == 403, closed.get_json()
    assert put_role(admin, number, "scribe", {"user": CAROL}).status_code == 200


def test_a_browser_session_gives_roles_only_with_its_csrf_header(slackbot: Bot):
    person = person_caller(slackbot)
    number = person.declare()["id"]
    forged = person_caller(slackbot, csrf=False)
    assert put_role(forged, number, "comms", {"user": BOB}).status_code == 401
    assert put_role(person, number, "comms", {"user": BOB}).status_code == 200


# --- Updates -----------------------------------------------------------------------------------


def test_an_update_is_posted_shown_on_the_incident_and_listed(tool: Caller, slackbot: Bot):
    number = tool.declare()["id"]
    before = datetime.now(UTC)
    answer = tool.post(
        f"/incidents/{number}/updates",
        json={
            "summary": "Payments provider is failing over",
            "impact": "About 30% of checkouts fail",
            "status": "investigating",
            "next_update_in": 1800,
        },
    )
    assert answer.status_code == 201, answer.get_json()
    update = answer.get_json()
    assert update["summary"] == "Payments provider is failing over"
    assert update["impact"] == "About 30% of checkouts fail"
    assert (update["status_from"], update["status_to"]) == ("open", "investigating")
    assert update["next_update_in"] == 1800
    promised = datetime.fromisoformat(update["next_update_at"])
    assert before + timedelta(minutes=30) <= promised <= datetime.now(UTC) + timedelta(minutes=30)
    assert update["actor"] == tool.actor

    shown = tool.get(f"/incidents/{number}").get_json()
    assert shown["status"] == "investigating"
    assert datetime.fromisoformat(shown["next_update_at"]) == promised
    assert shown["update_overdue"] is False
    latest = shown["latest_update"]
    assert (latest["summary"], latest["impact"], latest["status"], latest["by"]) == (
        "Payments provider is failing over",
        "About 30% of checkouts fail",
        "investigating",
        tool.actor,
    )
    # One event for the update and its move, not two.
    assert events(slackbot, number, EventKind.STATUS_CHANGED) == []

    second = tool.post(f"/incidents/{number}/updates", json={"summary": "Failover done"})
    assert second.status_code == 201
    assert second.get_json()["next_update_in"] is None
    listed = tool.get(f"/incidents/{number}/updates").get_json()["items"]
    assert [u["summary"] for u in listed] == ["Payments provider is failing over", "Failover done"]
    shown = tool.get(f"/incidents/{number}").get_json()
    assert shown["next_update_at"] is None and shown["latest_update"]["summary"] == "Failover done"
    assert tool.get("/incidents/999999/updates").status_code == 404


def test_a_late_update_is_overdue(tool: Caller, slackbot: Bot):
    number = tool.declare()["id"]
    tool.post(f"/incidents/{number}/updates", json={"summary": "Looking", "next_update_in": 900})
    with slackbot.sessions.begin() as session:
        incident = incidents.get_incident(session, number)
        incident.next_update_at = datetime.now(UTC) - timedelta(minutes=1)
    assert tool.get(f"/incidents/{number}").get_json()["update_overdue"] is True


def test_an_update_that_resolves_needs_the_resolution(tool: Caller):
    number = tool.declare()["id"]
    refused = tool.post(
        f"/incidents/{number}/updates", json={"summary": "Fixed", "status": "resolved"}
    )
    assert refused.status_code == 422 and field_of(refused) == "resolution"
    resolved = tool.post(
        f"/incidents/{number}/updates",
        json={
            "summary": "Fixed",
            "status": "resolved",
            "resolution": "Rolled back",
            "cause": "A bad deploy",
            "next_update_in": 900,
        },
    )
    assert resolved.status_code == 201, resolved.get_json()
    assert (resolved.get_json()["resolution"], resolved.get_json()["cause"]) == (
        "Rolled back",
        "A bad deploy",
    )
    shown = tool.get(f"/incidents/{number}").get_json()
    assert (shown["status"], shown["resolution"]) == ("resolved", "Rolled back")
    assert shown["next_update_at"] is None  # a resolved incident promises nothing


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"summary": "x" * 3001}, "summary"),
        ({"summary": "ok", "impact": "x" * 1001}, "impact"),
        ({"summary": "ok", "next_update_in": 7}, "next_update_in"),
        ({"summary": "ok", "next_update_in": 0}, "next_update_in"),
        ({"summary": "ok", "next_update_in": "soon"}, "next_update_in"),
        ({"summary": "ok", "status": "exploded"}, "status"),
        ({"summary": "ok", "expected_status": "exploded"}, "expected_status"),
        ({"summary": "ok", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_update_is_refused_and_changes_nothing(
    tool: Caller, slackbot: Bot, body: dict[str, Any], field: str
):
    number = tool.declare()["id"]
    answer = tool.post(f"/incidents/{number}/updates", json=body)
    assert answer.status_code == 422, answer.get_json()
    detail = answer.get_json()["detail"]
    assert detail.get("field") == field or field in str(detail), answer.get_json()
    assert events(slackbot, number, EventKind.STATUS_UPDATE) == []
    assert tool.get(f"/incidents/{number}").get_json()["status"] == "open"


def test_an_update_against_a_status_that_moved_or_a_closed_incident_is_refused(
    tool: Caller, admin: Caller, slackbot: Bot
):
    number = tool.declare()["id"]
    tool.post(f"/incidents/{number}/status", json={"status": "investigating"})
    stale = tool.post(
        f"/incidents/{number}/updates",
        json={"summary": "Looking", "status": "mitigated", "expected_status": "open"},
    )
    assert stale.status_code == 409, stale.get_json()
    tool.post(f"/incidents/{number}/status", json={"status": "closed", "resolution": "gone"})
    closed = tool.post(f"/incidents/{number}/updates", json={"summary": "Still here"})
    assert closed.status_code == 403, closed.get_json()
    assert events(slackbot, number, EventKind.STATUS_UPDATE) == []
    assert admin.post(f"/incidents/{number}/updates", json={"summary": "Note"}).status_code == 201

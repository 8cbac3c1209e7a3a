"""The REST API's incidents (/api/v1/incidents): who may call it, declaring, reading, changing,
moving and deleting, through the real web app on the fake Slack's bot.

The helpers here (callers with a token or a signed-in session) serve tests/test_api_*.py too.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.incidents import tokens
from tests.fakeslack import defaults
from tests.slackbot import ADMIN_ID, Bot, sign_in_client
from tests.steps import FIXED

API = "/api/v1"
CSRF = "test-csrf-token"


@dataclass
class Caller:
    """Someone calling the API: `actor` is how changes are attributed to them."""

    client: FlaskClient
    actor: str
    headers: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(API + path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("DELETE", path, **kwargs)

    def declare(self, **fields: Any) -> dict[str, Any]:
        answer = self.post(
            "/incidents", json={"title": "Checkout down", "severity": "SEV2", **fields}
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()


def new_token(bot: Bot, *, admin: bool = False) -> tuple[str, str]:
    """A fresh token's name and secret (tokens outlive each test's truncation: names differ)."""
    name = f"{'admin' if admin else 'tool'}-{secrets.token_hex(4)}"
    with bot.sessions.begin() as session:
        token, _ = tokens.create_token(session, name, is_admin=admin)
    return name, token


def token_caller(bot: Bot, *, admin: bool = False) -> Caller:
    name, token = new_token(bot, admin=admin)
    return Caller(bot.web.test_client(), f"token:{name}", {"Authorization": f"Bearer {token}"})


def person_caller(bot: Bot, user_id: str = defaults.USER_ID, *, csrf: bool = True) -> Caller:
    """A browser signed in as `user_id`; its writes carry the CSRF header unless told not to."""
    client = bot.web.test_client()
    sign_in_client(client, user_id, csrf_token=CSRF)
    return Caller(client, user_id, {"X-CSRF-Token": CSRF} if csrf else {})


def error_of(answer: TestResponse) -> str:
    body = answer.get_json()
    assert set(body) == {"message", "detail"}, body
    return body["message"]


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


@pytest.fixture
def admin(slackbot: Bot) -> Caller:
    return token_caller(slackbot, admin=True)


# --- Who may call ------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/incidents"),
    ("POST", "/incidents"),
    ("GET", "/incidents/1"),
    ("PATCH", "/incidents/1"),
    ("DELETE", "/incidents/1"),
    ("POST", "/incidents/1/status"),
    ("GET", "/incidents/1/notes"),
    ("POST", "/incidents/1/notes"),
    ("DELETE", "/incidents/1/notes/1"),
    ("GET", "/incidents/1/timeline"),
    ("PUT", "/incidents/1/roles/comms"),
    ("POST", "/incidents/1/updates"),
    ("GET", "/incidents/1/updates"),
    ("GET", "/incidents/1/screenshots"),
    ("POST", "/incidents/1/screenshots"),
    ("GET", "/incidents/1/screenshots/1"),
    ("DELETE", "/incidents/1/screenshots/1"),
    ("GET", "/stats"),
    ("POST", "/intake"),
]


def test_every_endpoint_needs_a_live_token_or_a_session(slackbot: Bot, tool: Caller):
    tool.declare()
    name, revoked = new_token(slackbot)
    with slackbot.sessions.begin() as session:
        tokens.revoke_token(session, name)
    anonymous = slackbot.web.test_client()
    refusals = {
        "nothing": {},
        "a made-up token": {"Authorization": "Bearer itk_" + "x" * 43},
        "a revoked token": {"Authorization": f"Bearer {revoked}"},
        "another scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    }
    for method, path in ENDPOINTS:
        for why, headers in refusals.items():
            answer = anonymous.open(API + path, method=method, headers=headers, json={})
            assert answer.status_code == 401, (method, path, why)
            assert "API token" in error_of(answer)
    # None of that changed anything.
    assert [e["kind"] for e in tool.get("/incidents/1/timeline").get_json()["items"]] == ["created"]


def test_a_session_reads_freely_and_writes_only_with_its_csrf_header(slackbot: Bot):
    person = person_caller(slackbot)
    without_csrf = person_caller(slackbot, csrf=False)
    assert person.get("/incidents").status_code == 200
    refused = without_csrf.post("/incidents", json={"title": "Checkout down", "severity": "SEV2"})
    assert refused.status_code == 401
    assert "X-CSRF-Token" in error_of(refused)
    wrong = person.post(
        "/incidents",
        json={"title": "Checkout down", "severity": "SEV2"},
        headers={"X-CSRF-Token": "not-it"},
    )
    assert wrong.status_code == 401
    assert person.get("/incidents").get_json()["total"] == 0
    declared = person.declare()
    assert declared["reporter"] == defaults.USER_ID
    assert declared["reporter_label"] is None
    assert without_csrf.get(f"/incidents/{declared['id']}").status_code == 200


# --- Declaring ---------------------------------------------------------------------------------


def test_declaring_answers_201_with_the_incident_and_where_it_lives(tool: Caller):
    answer = tool.post(
        "/incidents",
        json={
            "title": "  Checkout is failing  ",
            "severity": "high",
            "description": "500s on /pay",
            "service": "checkout",
            "category": "outage",
            "owner": "U0OWNER001",
            "assignee": "U0ASSIGN01",
        },
    )
    assert answer.status_code == 201
    body = answer.get_json()
    assert answer.headers["Location"] == f"{API}/incidents/{body['id']}"
    assert body["ref"] == f"INC-{body['id']}"
    assert (body["title"], body["severity"], body["status"]) == (
        "Checkout is failing",
        "SEV2",
        "open",
    )
    assert (body["service"], body["category"]) == ("checkout", "outage")
    assert (body["owner"], body["assignee"]) == ("U0OWNER001", "U0ASSIGN01")
    assert body["reporter"] == tool.actor
    assert body["reporter_label"] == f"API token {tool.actor.removeprefix('token:')}"
    assert body["card_channel_id"] is None  # no INCIDENT_CHANNEL: no card
    assert body["url"] == f"/incidents/{body['id']}"
    assert tool.get(answer.headers["Location"].removeprefix(API)).get_json() == body


BAD_DECLARATIONS: list[tuple[Any, str]] = [
    ({"severity": "SEV2"}, "title"),
    ({"title": "Checkout down"}, "severity"),
    ({"title": "Checkout down", "severity": "SEV2", "priority": 1}, "priority"),
    ({"title": "ab", "severity": "SEV2"}, "Title must be at least 3"),
    ({"title": "x" * 256, "severity": "SEV2"}, "Title is too long"),
    ({"title": "Checkout down", "severity": "SEV9"}, "Unknown severity"),
    ({"title": "Checkout down", "severity": "SEV2", "owner": "<!channel>"}, "Owner"),
    ({"title": "Checkout down", "severity": "SEV2", "category": "weather"}, "category"),
    ({"title": "Check\x00out", "severity": "SEV2"}, "NUL"),
    ({"title": 42, "severity": "SEV2"}, "title"),
    (["Checkout down"], "Invalid input type"),
]


def test_declaring_refuses_bad_input_and_says_what(tool: Caller):
    for body, says in BAD_DECLARATIONS:
        answer = tool.post("/incidents", json=body)
        assert answer.status_code == 422, body
        assert says in str(answer.get_json()), body
    # A body that is not JSON at all is a clear 400; a form is no JSON, so nothing was sent.
    answer = tool.post("/incidents", data='{"title": ', content_type="application/json")
    assert answer.status_code == 400
    assert error_of(answer).startswith("The body is not valid JSON: Expecting value: line 1")
    not_utf8 = tool.post("/incidents", data=b'{"title": "\xff"}', content_type="application/json")
    assert not_utf8.status_code == 400 and "not valid JSON" in error_of(not_utf8)
    form = tool.post("/incidents", data={"title": "Checkout down", "severity": "SEV2"})
    assert form.status_code == 422
    assert tool.get("/incidents").get_json()["total"] == 0


# --- Reading -----------------------------------------------------------------------------------


def test_reading_finds_by_reference_and_shows_milestones_and_next_moves(
    tool: Caller, admin: Caller
):
    declared = tool.declare()
    number = declared["id"]
    for ref in (str(number), f"INC-{number}", f"inc-{number}"):
        assert tool.get(f"/incidents/{ref}").get_json() == declared
    missing = tool.get("/incidents/INC-999999")
    assert missing.status_code == 404
    assert error_of(missing) == "There is no incident INC-999999."
    assert tool.get("/incidents/twelve").status_code == 422
    assert tool.get("/incidents/0").status_code == 422
    assert declared["allowed_next_statuses"] == ["investigating", "mitigated", "resolved", "closed"]
    assert [
        declared[m] for m in ("acknowledged_at", "mitigated_at", "resolved_at", "closed_at")
    ] == [None] * 4
    tool.post(f"/incidents/{number}/status", json={"status": "ack"})
    tool.post(
        f"/incidents/{number}/status",
        json={"status": "resolved", "cause": "bad deploy", "resolution": "rolled back"},
    )
    resolved = tool.get(f"/incidents/{number}").get_json()
    assert resolved["acknowledged_at"] and resolved["resolved_at"] and resolved["mitigated_at"]
    assert resolved["closed_at"] is None
    assert (resolved["cause"], resolved["resolution"]) == ("bad deploy", "rolled back")
    tool.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert tool.get(f"/incidents/{number}").get_json()["allowed_next_statuses"] == []
    assert admin.get(f"/incidents/{number}").get_json()["allowed_next_statuses"] == [
        "investigating"
    ]


# --- Changing ----------------------------------------------------------------------------------


def test_a_patch_changes_only_what_it_sends_in_one_go(tool: Caller):
    number = tool.declare(description="first words", owner="U0OWNER001")["id"]
    answer = tool.patch(
        f"/incidents/INC-{number}",
        json={
            "title": "Checkout down in EU",
            "description": None,
            "severity": "SEV1",
            "assignee": "U0ASSIGN01",
            "owner": "U0OWNER001",  # unchanged: left alone
        },
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["title"], body["description"], body["severity"]) == (
        "Checkout down in EU",
        None,
        "SEV1",
    )
    assert (body["owner"], body["assignee"], body["service"]) == ("U0OWNER001", "U0ASSIGN01", None)
    events = tool.get(f"/incidents/{number}/timeline").get_json()["items"]
    assert [(e["kind"], e["field"]) for e in events[1:]] == [
        ("field_changed", "title"),
        ("field_changed", "description"),
        ("severity_changed", "severity"),
        ("assigned", "assignee"),
    ]
    assert all(e["actor"] == tool.actor for e in events)
    same = tool.patch(f"/incidents/{number}", json={"severity": "critical", "owner": "U0OWNER001"})
    assert same.status_code == 200
    assert len(tool.get(f"/incidents/{number}/timeline").get_json()["items"]) == len(events)
    unassigned = tool.patch(f"/incidents/{number}", json={"owner": None}).get_json()
    assert unassigned["owner"] is None


BAD_PATCHES: list[tuple[dict[str, Any], str]] = [
    ({}, "Send at least one of"),
    ({"status": "resolved"}, "Unknown field"),
    ({"title": "Better title", "category": "weather"}, "Unknown category"),
    ({"title": "Better title", "severity": "SEV9"}, "Unknown severity"),
    ({"title": "Better title", "owner": "not a person"}, "Owner must be a person"),
    ({"title": None}, "title"),
    ({"cause": "c" * 10_001}, "Cause is too long"),
]


def test_a_refused_patch_changes_nothing(tool: Caller, admin: Caller):
    declared = tool.declare()
    for body, says in BAD_PATCHES:
        answer = tool.patch(f"/incidents/{declared['id']}", json=body)
        assert answer.status_code == 422, body
        assert says in str(answer.get_json()), body
    assert tool.get(f"/incidents/{declared['id']}").get_json() == declared
    assert len(tool.get(f"/incidents/{declared['id']}/timeline").get_json()["items"]) == 1
    # A closed incident is changed by admins only.
    number = declared["id"]
    unsaid = tool.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert unsaid.status_code == 422 and "a resolution is needed" in error_of(unsaid)
    tool.post(f"/incidents/{number}/status", json={"status": "closed", "resolution": FIXED})
    refused = tool.patch(f"/incidents/{number}", json={"title": "Renamed after closing"})
    assert refused.status_code == 403
    assert "only an incident admin" in error_of(refused)
    assert tool.patch("/incidents/999999", json={"title": "Nobody"}).status_code == 404
    done = admin.patch(f"/incidents/{number}", json={"title": "Renamed after closing"})
    assert done.status_code == 200 and done.get_json()["title"] == "Renamed after closing"


# --- Moving ------------------------------------------------------------------------------------


def test_status_moves_follow_the_workflow(tool: Caller, admin: Caller):
    number = tool.declare()["id"]
    moved = tool.post(
        f"/incidents/{number}/status", json={"status": "mitigated", "note": "traffic drained"}
    )
    assert moved.status_code == 200
    assert moved.get_json()["status"] == "mitigated"
    last = tool.get(f"/incidents/{number}/timeline").get_json()["items"][-1]
    assert (last["from_value"], last["to_value"], last["text"]) == (
        "open",
        "mitigated",
        "traffic drained",
    )
    again = tool.post(f"/incidents/{number}/status", json={"status": "mitigated"})
    assert again.status_code == 409 and "already mitigated" in error_of(again)
    assert tool.post(f"/incidents/{number}/status", json={"status": "open"}).status_code == 409
    unknown = tool.post(f"/incidents/{number}/status", json={"status": "sleeping"})
    assert unknown.status_code == 422 and "Unknown status" in error_of(unknown)
    assert tool.post(f"/incidents/{number}/status", json={}).status_code == 422
    long_note = {"status": "resolved", "note": "n" * 3_001}
    assert tool.post(f"/incidents/{number}/status", json=long_note).status_code == 422
    assert tool.post("/incidents/999999/status", json={"status": "closed"}).status_code == 404
    tool.post(f"/incidents/{number}/status", json={"status": "closed", "resolution": FIXED})
    reopen = {"status": "investigating"}
    refused = tool.post(f"/incidents/{number}/status", json=reopen)
    assert refused.status_code == 403
    reopened = admin.post(f"/incidents/{number}/status", json=reopen)
    assert reopened.status_code == 200
    assert reopened.get_json()["resolved_at"] is None


# --- Deleting ----------------------------------------------------------------------------------


def test_only_admins_delete_incidents(slackbot: Bot, tool: Caller, admin: Caller):
    first, second = tool.declare()["id"], tool.declare()["id"]
    refused = tool.delete(f"/incidents/{first}")
    assert refused.status_code == 403
    assert error_of(refused) == f"Only an incident admin can delete INC-{first}."
    person = person_caller(slackbot)
    assert person.delete(f"/incidents/{first}").status_code == 403
    deleted = admin.delete(f"/incidents/INC-{first}")
    assert deleted.status_code == 204 and deleted.data == b""
    assert tool.get(f"/incidents/{first}").status_code == 404
    assert admin.delete(f"/incidents/{first}").status_code == 404
    # A person in INCIDENT_ADMINS, signed in, is an admin too; without the CSRF header, nobody.
    assert (
        person_caller(slackbot, ADMIN_ID, csrf=False).delete(f"/incidents/{second}").status_code
        == 401
    )
    assert person_caller(slackbot, ADMIN_ID).delete(f"/incidents/{second}").status_code == 204
    assert tool.get("/incidents").get_json()["total"] == 0


# --- Listing -----------------------------------------------------------------------------------


def test_the_list_filters_sorts_and_pages(tool: Caller):
    tool.declare(title="Checkout down", severity="SEV3", service="checkout")
    tool.declare(title="Search slow", severity="SEV1", service="search")
    tool.declare(title="Login broken", severity="SEV2", service="auth")
    by_severity = tool.get("/incidents?sort=-severity&limit=2").get_json()
    assert [i["title"] for i in by_severity["items"]] == ["Search slow", "Login broken"]
    assert (by_severity["total"], by_severity["has_next"]) == (3, True)
    filtered = tool.get("/incidents?service=checkout,auth&q=down").get_json()
    assert [i["title"] for i in filtered["items"]] == ["Checkout down"]
    for bad in ("limit=101", "sort=colour", "page=0", "severity=SEV9", "status=sleeping"):
        assert tool.get(f"/incidents?{bad}").status_code == 422, bad

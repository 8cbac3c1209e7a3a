"""The REST API's follow-ups (/api/v1/incidents/{id}/followups, /api/v1/followups) and the
review's fields on an incident, and the close rule through the API: good and bad paths, through
the real web app on the fake Slack's bot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import Actor, followups
from db.models import Delivery, DeliveryAction, EventKind, FollowUp
from tests.fakeslack import FakeSlack
from tests.slackbot import Bot, running_bot
from tests.steps import FIXED
from tests.test_api import API, Caller, error_of, person_caller, token_caller

BOB, CAROL = "U0BOB00001", "U0CAROL001"
# A due date some weeks ahead, as a date and as the API takes it.
LATER = datetime.now(UTC).date() + timedelta(days=60)


@pytest.fixture
def tool(slackbot: Bot) -> Caller:
    return token_caller(slackbot)


@pytest.fixture
def admin(slackbot: Bot) -> Caller:
    return token_caller(slackbot, admin=True)


@pytest.fixture
def tracked(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot with FOLLOWUP_TRACKER=github (the outbox's worker off: exports stay queued)."""
    rules = followups.FollowUpRules(tracker="github")
    with running_bot(fake_slack, engine, committing_sessions, followup_rules=rules) as bot:
        yield bot


def field_of(answer: Any) -> str | None:
    return answer.get_json()["detail"].get("field")


def add(caller: Caller, number: int, **body: Any) -> Any:
    return caller.post(f"/incidents/{number}/followups", json={"title": "Alert on 5xx", **body})


def added(caller: Caller, number: int, **body: Any) -> dict[str, Any]:
    answer = add(caller, number, **body)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def rows(bot: Bot) -> list[FollowUp]:
    with bot.sessions() as session:
        return list(session.scalars(select(FollowUp).order_by(FollowUp.id)))


def closed_incident(tool: Caller) -> int:
    number = tool.declare()["id"]
    moved = tool.post(
        f"/incidents/{number}/status", json={"status": "resolved", "resolution": FIXED}
    )
    assert moved.status_code == 200, moved.get_json()
    closed = tool.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert closed.status_code == 200, closed.get_json()
    return number


ENDPOINTS = [
    ("POST", "/incidents/1/followups"),
    ("GET", "/incidents/1/followups"),
    ("GET", "/followups"),
    ("GET", "/followups/1"),
    ("PATCH", "/followups/1"),
    ("POST", "/followups/1/export"),
]


def test_every_followup_endpoint_needs_a_token_or_a_session(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    added(tool, number)
    anonymous = slackbot.web.test_client()
    for method, path in ENDPOINTS:
        answer = anonymous.open(API + path, method=method, json={"title": "Forged one"})
        assert answer.status_code == 401, (method, path)
        assert "API token" in error_of(answer)
    # A signed-in browser without its CSRF header may read, not write.
    browser = person_caller(slackbot, csrf=False)
    assert browser.get("/followups").status_code == 200
    assert add(browser, number).status_code == 401
    assert browser.patch("/followups/1", json={"status": "done"}).status_code == 401
    assert [f.title for f in rows(slackbot)] == ["Alert on 5xx"]
    assert rows(slackbot)[0].status.value == "open"


def test_adding_answers_201_and_reads_due_dates_as_people_say_them(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    answer = add(tool, number, owner=BOB, due="in 2w", title="  Page on checkout 5xx  ")
    assert answer.status_code == 201, answer.get_json()
    body = answer.get_json()
    assert answer.headers["Location"] == f"{API}/followups/{body['id']}"
    assert body["ref"] == f"FU-{body['id']}"
    assert (body["incident_id"], body["incident_ref"]) == (number, f"INC-{number}")
    assert (body["title"], body["owner"]) == ("Page on checkout 5xx", BOB)
    assert body["priority"] == "medium"  # the middle of FOLLOWUP_PRIORITIES
    today = datetime.now(UTC).date()
    assert date.fromisoformat(body["due_on"]) == today + timedelta(weeks=2)
    assert (body["status"], body["overdue"], body["created_by"]) == ("open", False, tool.actor)
    assert body["url"] == f"/incidents/{number}#FU-{body['id']}"
    assert tool.get(f"/followups/FU-{body['id']}").get_json() == body
    # A plain date, and no due date at all.
    second = added(tool, number, due_on=LATER.isoformat(), priority="High")
    assert (second["due_on"], second["priority"]) == (LATER.isoformat(), "high")
    third = added(tool, number, title="Write the runbook")
    assert (third["due_on"], third["owner"]) == (None, None)
    listed = tool.get(f"/incidents/INC-{number}/followups").get_json()["items"]
    # Open ones by due date, those without one last.
    assert [f["id"] for f in listed] == [body["id"], second["id"], third["id"]]
    kinds = [e["kind"] for e in tool.get(f"/incidents/{number}/timeline").get_json()["items"]]
    assert kinds.count(EventKind.FOLLOWUP_ADDED.value) == 3
    # The owner named by someone else is told by DM, through the outbox.
    with slackbot.sessions() as session:
        told = [
            d.payload
            for d in session.scalars(select(Delivery).where(Delivery.incident_id == number))
            if d.payload.get("about") == "followup_assigned"
        ]
    assert [(t["user"], t["followup_id"]) for t in told] == [(BOB, body["id"])]


BAD_FOLLOWUPS: list[tuple[dict[str, Any], str, str | None]] = [
    ({"title": None}, "title", None),
    ({"title": "ab"}, "at least 3", "title"),
    ({"title": "x" * 256}, "too long", None),
    ({"due": "someday"}, "not a due date", "due"),
    ({"due": "in 2w", "due_on": LATER.isoformat()}, "not both", None),
    ({"due_on": "2099-01-01"}, "more than 5 years away", "due"),
    ({"due_on": "2001-01-01"}, "in the past", "due"),
    ({"due_on": "31/12/2099"}, "Not a valid date", None),
    ({"priority": "urgent"}, "Unknown priority", "priority"),
    ({"owner": "<!channel>"}, "Owner", "owner"),
    ({"unexpected": 1}, "unexpected", None),
]


def test_adding_refuses_bad_input_with_the_field_and_changes_nothing(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    for extra, says, field in BAD_FOLLOWUPS:
        answer = add(tool, number, **extra)
        assert answer.status_code == 422, extra
        assert says in str(answer.get_json()), (extra, answer.get_json())
        if field:
            assert field_of(answer) == field, extra
    missing = add(tool, 999999)
    assert missing.status_code == 404
    assert error_of(missing) == "There is no incident INC-999999."
    not_json = tool.post(
        f"/incidents/{number}/followups", data="{", content_type="application/json"
    )
    assert not_json.status_code == 400
    assert rows(slackbot) == []
    assert tool.get(f"/incidents/{number}/followups").get_json() == {"items": []}
    assert tool.get("/incidents/999999/followups").status_code == 404


def test_the_list_filters_by_owner_status_overdue_and_incident_and_pages(
    slackbot: Bot, tool: Caller
):
    me = person_caller(slackbot, BOB)
    first, second = tool.declare()["id"], tool.declare(title="Search is slow")["id"]
    mine = added(tool, first, owner=BOB, due="in 3d")
    carols = added(tool, second, owner=CAROL, due="in 1w")
    nobodys = added(tool, second, title="Write the runbook")
    # Added a month ago, due a week later: overdue now.
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with slackbot.sessions.begin() as session:
        draft = followups.FollowUpDraft(
            title="Rotate the keys", owner=BOB, due_on=(month_ago + timedelta(days=7)).date()
        )
        late = followups.add_followup(
            session, first, draft, Actor(CAROL), slackbot.settings.followup_rules, now=month_ago
        ).id
    done = tool.patch(f"/followups/{carols['id']}", json={"status": "done"})
    assert done.status_code == 200, done.get_json()

    def ids(query: str, caller: Caller = tool) -> list[int]:
        answer = caller.get(f"/followups{query}")
        assert answer.status_code == 200, answer.get_json()
        return [f["id"] for f in answer.get_json()["items"]]

    assert ids("") == [late, mine["id"], nobodys["id"], carols["id"]]
    assert ids(f"?owner={BOB}") == [late, mine["id"]]
    assert ids("?owner=me", me) == [late, mine["id"]]
    assert ids("?status=open") == [late, mine["id"], nobodys["id"]]
    assert ids("?status=done") == [carols["id"]]
    assert ids("?overdue=true") == [late]
    assert tool.get("/followups?overdue=true").get_json()["items"][0]["overdue"] is True
    assert ids(f"?incident=INC-{second}") == [nobodys["id"], carols["id"]]
    assert ids(f"?incident={second}&status=open") == [nobodys["id"]]
    paged = tool.get("/followups?limit=3&page=1").get_json()
    assert (paged["total"], paged["page"], paged["limit"], paged["has_next"]) == (4, 1, 3, True)
    last = tool.get("/followups?limit=3&page=2").get_json()
    assert ([f["id"] for f in last["items"]], last["has_next"]) == ([carols["id"]], False)
    for query, field in (
        ("?status=finished", "status"),
        ("?overdue=perhaps", "overdue"),
        ("?page=0", "page"),
        ("?limit=1000", "limit"),
    ):
        refused = tool.get(f"/followups{query}")
        assert refused.status_code == 422, query
        assert field in refused.get_json()["detail"]["query"], query
    bad_incident = tool.get("/followups?incident=twelve")
    assert (bad_incident.status_code, field_of(bad_incident)) == (422, "incident")


def test_a_patch_changes_what_it_sends_and_marks_done_or_wont_do(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    made = added(tool, number, owner=BOB, due_on=LATER.isoformat())
    path = f"/followups/{made['id']}"
    answer = tool.patch(path, json={"title": "Alert on 5xx and 4xx", "owner": CAROL, "due": "3d"})
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["title"], body["owner"]) == ("Alert on 5xx and 4xx", CAROL)
    assert date.fromisoformat(body["due_on"]) == datetime.now(UTC).date() + timedelta(days=3)
    assert body["priority"] == "medium"
    cleared = tool.patch(path, json={"owner": None, "due_on": None, "priority": "low"}).get_json()
    assert (cleared["owner"], cleared["due_on"], cleared["priority"]) == (None, None, "low")
    done = tool.patch(path, json={"status": "done"}).get_json()
    assert (done["status"], done["closed_by"]) == ("done", tool.actor)
    assert done["closed_at"] is not None
    # Sending the status it has is no change (a PATCH may be repeated).
    again = tool.patch(path, json={"status": "done"})
    assert again.status_code == 200 and again.get_json()["closed_at"] == done["closed_at"]
    wont = tool.patch(path, json={"status": "wont_do"}).get_json()
    assert wont["status"] == "wont_do"
    reopened = tool.patch(path, json={"status": "open"}).get_json()
    assert reopened["status"] == "open"
    assert (reopened["closed_by"], reopened["closed_at"]) == (None, None)
    changes = [
        e
        for e in tool.get(f"/incidents/{number}/timeline").get_json()["items"]
        if e["kind"] == EventKind.FOLLOWUP_CHANGED.value
    ]
    assert [e["field"] for e in changes] == [
        "title", "owner", "due_on", "owner", "priority", "due_on", "status", "status", "status"
    ]  # fmt: skip


def test_a_patch_refuses_bad_input_and_unknown_follow_ups(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    made = added(tool, number, owner=BOB)
    path = f"/followups/{made['id']}"
    for body, says, field in [
        ({}, "at least one of", None),
        ({"status": "finished"}, "Must be one of", None),
        ({"title": "no"}, "at least 3", "title"),
        ({"due": "yesterday"}, "not a due date", "due"),
        ({"due_on": "2001-01-01"}, "in the past", "due"),
        ({"priority": "urgent"}, "Unknown priority", "priority"),
        ({"owner": "bob"}, "Owner", "owner"),
    ]:
        answer = tool.patch(path, json=body)
        assert answer.status_code == 422, body
        assert says in str(answer.get_json()), (body, answer.get_json())
        if field:
            assert field_of(answer) == field, body
    assert tool.get(path).get_json() == made
    for missing in ("/followups/999999", "/followups/FU-999999"):
        assert tool.get(missing).status_code == 404
        assert tool.patch(missing, json={"status": "done"}).status_code == 404
    bad_id = tool.get("/followups/twelve")
    assert (bad_id.status_code, field_of(bad_id)) == (422, "followup")


def test_a_closed_incident_keeps_its_follow_ups_and_review_editable(slackbot: Bot, tool: Caller):
    number = closed_incident(tool)
    # The incident itself is frozen for a non-admin...
    frozen = tool.patch(f"/incidents/{number}", json={"title": "Renamed after closing"})
    assert frozen.status_code == 403
    # ...not the work after it.
    made = added(tool, number, owner=BOB, due="in 1w")
    done = tool.patch(f"/followups/{made['id']}", json={"status": "done", "priority": "high"})
    assert done.status_code == 200, done.get_json()
    assert (done.get_json()["status"], done.get_json()["priority"]) == ("done", "high")
    reviewed = tool.patch(
        f"/incidents/{number}",
        json={"customer_impact": "Checkout failed for 1 in 3", "review_status": "in_review"},
    )
    assert reviewed.status_code == 200, reviewed.get_json()
    assert reviewed.get_json()["review_status"] == "in_review"
    # A review field beside an incident field is refused whole: nothing changes.
    mixed = tool.patch(f"/incidents/{number}", json={"title": "Renamed", "went_well": "Paging"})
    assert mixed.status_code == 403
    shown = tool.get(f"/incidents/{number}").get_json()
    assert (shown["title"], shown["went_well"]) == ("Checkout down", None)
    assert shown["status"] == "closed"


def test_the_review_fields_are_read_and_changed_through_the_incident(tool: Caller):
    number = tool.declare()["id"]
    fresh = tool.get(f"/incidents/{number}").get_json()
    assert {name: fresh[name] for name in ("review_status", "reviewer", "impact_started_at")} == {
        "review_status": "draft",
        "reviewer": None,
        "impact_started_at": None,
    }
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    answer = tool.patch(
        f"/incidents/{number}",
        json={
            "impact_started_at": started.isoformat(),
            "impact_ended_at": (started + timedelta(minutes=90)).isoformat(),
            "customer_impact": "Checkout failed",
            "contributing_factors": "A config push without a canary",
            "went_well": "Paging",
            "went_badly": "The rollback took 40 minutes",
            "review_status": "done",
            "reviewer": CAROL,
            "severity": "SEV1",
        },
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert datetime.fromisoformat(body["impact_started_at"]) == started
    assert datetime.fromisoformat(body["impact_ended_at"]) == started + timedelta(minutes=90)
    assert (body["went_badly"], body["review_status"], body["reviewer"]) == (
        "The rollback took 40 minutes",
        "done",
        CAROL,
    )
    assert body["severity"] == "SEV1"
    events = tool.get(f"/incidents/{number}/timeline").get_json()["items"]
    assert "review_status" in {e["field"] for e in events if e["kind"] == "field_changed"}
    cleared = tool.patch(f"/incidents/{number}", json={"went_well": None, "reviewer": None})
    assert (cleared.get_json()["went_well"], cleared.get_json()["reviewer"]) == (None, None)
    for bad, says, field in [
        ({"impact_ended_at": (started - timedelta(hours=1)).isoformat()}, "can't end", None),
        ({"impact_started_at": "2999-01-01T00:00:00Z"}, "future", "impact_started_at"),
        ({"impact_started_at": "yesterday"}, "ISO date", None),
        ({"review_status": "finished"}, "Must be one of", None),
        ({"review_status": None}, "null", None),
        ({"customer_impact": "x" * 4001}, "too long", "customer_impact"),
        ({"reviewer": "carol"}, "Reviewer", "reviewer"),
    ]:
        refused = tool.patch(f"/incidents/{number}", json=bad)
        assert refused.status_code == 422, bad
        assert says in str(refused.get_json()), (bad, refused.get_json())
        if field:
            assert field_of(refused) == field, bad
    after = tool.get(f"/incidents/{number}").get_json()
    assert (after["customer_impact"], after["review_status"]) == ("Checkout failed", "done")


def test_closing_waits_for_triaged_follow_ups_and_an_admin_may_override(
    tool: Caller, admin: Caller
):
    number = tool.declare()["id"]
    untriaged = added(tool, number, title="Add a canary")
    resolved = tool.post(
        f"/incidents/{number}/status", json={"status": "resolved", "resolution": FIXED}
    )
    assert resolved.status_code == 200
    refused = tool.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert (refused.status_code, field_of(refused)) == (422, "status")
    assert f"FU-{untriaged['id']}" in error_of(refused)
    assert "no owner or due date" in error_of(refused)
    by_update = tool.post(
        f"/incidents/{number}/updates", json={"summary": "Done", "status": "closed"}
    )
    assert (by_update.status_code, field_of(by_update)) == (422, "status")
    # A non-admin's override is not enough; an admin's is, and the timeline keeps the reason.
    not_admin = tool.post(
        f"/incidents/{number}/status", json={"status": "closed", "override": "Reviewed"}
    )
    assert not_admin.status_code == 403
    assert tool.get(f"/incidents/{number}").get_json()["status"] == "resolved"
    admin_refused = admin.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert "An incident admin may close it anyway" in error_of(admin_refused)
    too_long = admin.post(
        f"/incidents/{number}/status", json={"status": "closed", "override": "x" * 501}
    )
    assert too_long.status_code == 422
    closed = admin.post(
        f"/incidents/{number}/status",
        json={"status": "closed", "override": "Tracked in the quarterly plan"},
    )
    assert closed.status_code == 200, closed.get_json()
    moved = [
        e
        for e in admin.get(f"/incidents/{number}/timeline").get_json()["items"]
        if e["kind"] == "status_changed" and e["to_value"] == "closed"
    ]
    assert moved[0]["details"]["override"] == "Tracked in the quarterly plan"


def test_closing_goes_through_once_every_follow_up_has_an_owner_and_a_date(tool: Caller):
    number = tool.declare()["id"]
    made = added(tool, number, title="Add a canary")
    tool.post(f"/incidents/{number}/status", json={"status": "resolved", "resolution": FIXED})
    assert tool.post(f"/incidents/{number}/status", json={"status": "closed"}).status_code == 422
    tool.patch(f"/followups/{made['id']}", json={"owner": BOB, "due": "in 2w"})
    closed = tool.post(f"/incidents/{number}/status", json={"status": "closed"})
    assert closed.status_code == 200, closed.get_json()


def test_export_needs_a_tracker(slackbot: Bot, tool: Caller):
    number = tool.declare()["id"]
    made = added(tool, number, owner=BOB)
    refused = tool.post(f"/followups/{made['id']}/export")
    assert (refused.status_code, field_of(refused)) == (422, "tracker")
    assert "FOLLOWUP_TRACKER" in error_of(refused)
    assert rows(slackbot)[0].export_requested_at is None


def test_export_is_queued_once_in_the_outbox(tracked: Bot):
    tool = token_caller(tracked)
    number = closed_incident(tool)  # a closed incident's follow-ups may be exported too
    made = added(tool, number, owner=BOB, due="in 1w")
    answer = tool.post(f"/followups/{made['id']}/export")
    assert answer.status_code == 202, answer.get_json()
    body = answer.get_json()
    assert body["export_requested_at"] is not None and body["tracker"] == "github"
    assert body["ticket_url"] is None
    again = tool.post(f"/followups/FU-{made['id']}/export")
    assert again.status_code == 409
    assert "already being exported" in error_of(again)
    assert tool.post("/followups/999999/export").status_code == 404
    with tracked.sessions() as session:
        queued = session.scalars(
            select(Delivery).where(Delivery.action == DeliveryAction.EXPORT_FOLLOWUP)
        ).all()
    assert [(d.incident_id, d.payload) for d in queued] == [
        (number, {"followup_id": made["id"], "tracker": "github"})
    ]

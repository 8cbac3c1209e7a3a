"""The incident page's People section (roles given by name from Slack's users.list, "I'll lead",
handoffs, subscribers), its Post an update form and what it shows of the latest update and the
promised next one, through Flask's test client on the running bot and the fake Slack."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.test import TestResponse

from bot import incidents
from bot.incidents import Actor
from db.models import EventKind, Status
from tests.slackbot import ADMIN_ID, Bot
from tests.steps import FIXED
from tests.test_pages import (
    ALICE,
    declare,
    events,
    flashed,
    incident,
    post,
    problem,
    sign_in,
    text_of,
)

BOB, CAROL, SAM1, SAM2 = "U0BOB00001", "U0CAROL001", "U0SAM00001", "U0SAM00002"


@pytest.fixture
def client(slackbot: Bot) -> Any:
    fake = slackbot.fake
    fake.add_user(BOB, "bob", real_name="Bob Builder")
    fake.add_user(CAROL, "carol", real_name="Carol Danvers")
    fake.add_user(SAM1, "sam.a", real_name="Sam Alpha", display_name="Sam")
    fake.add_user(SAM2, "sam.b", real_name="Sam Beta", display_name="Sam")
    return slackbot.web.test_client()


def page_of(client: Any, incident_id: int) -> str:
    response = client.get(f"/incidents/{incident_id}")
    assert response.status_code == 200
    return text_of(response)


def holder(page: str, role: str) -> str:
    found = re.search(rf'<tr id="role-{role}">.*?<td class="holder"[^>]*>(.*?)</td>', page, re.S)
    assert found, page[:3000]
    return html.unescape(found.group(1).strip())


def give(client: Any, incident_id: int, role: str, **form: str) -> TestResponse:
    return post(client, f"/incidents/{incident_id}/roles/{role}", role=role, **form)


# --- People ------------------------------------------------------------------------------------


def test_the_people_section_lists_each_role_and_offers_the_workspace_by_name(
    slackbot: Bot, client: Any
):
    sign_in(client)
    incident_id = declare(slackbot)
    page = page_of(client, incident_id)

    assert re.findall(r'<tr id="role-(\w+)">', page) == ["lead", "comms", "scribe"]
    assert [holder(page, r) for r in ("lead", "comms", "scribe")] == ["nobody"] * 3
    assert "Communications lead" in page and "posts the updates" in page
    offered = re.findall(r'<option value="([^"]*)"></option>', page)
    assert [html.unescape(o) for o in offered] == [
        "Admin (@admin)",
        "Alice Example (@alice)",
        "Bob Builder (@bob)",
        "Carol Danvers (@carol)",
        "Sam (@sam.a)",
        "Sam (@sam.b)",
    ]
    assert "incident-bot" not in " ".join(offered)  # bots are not people to pick
    assert 'list="workspace-people"' in page
    assert 'id="take-lead"' in page  # nobody leads: "I'll lead"
    assert 'id="handoff"' not in page  # a handoff needs someone to hand off from


def test_a_role_is_given_by_name_and_shown_by_name(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    ref = f"INC-{incident_id}"

    response = give(client, incident_id, "comms", person="Bob Builder (@bob)")
    assert flashed(client, response) == f"Bob Builder is the Communications lead of {ref} now."
    response = give(client, incident_id, "scribe", person="carol")
    assert flashed(client, response) == f"Carol Danvers is the Scribe of {ref} now."
    page = page_of(client, incident_id)
    assert (holder(page, "comms"), holder(page, "scribe")) == ("Bob Builder", "Carol Danvers")
    assert "gave the comms role to Bob Builder" in page

    response = give(client, incident_id, "scribe", action="take")
    assert flashed(client, response) == f"You are the Scribe of {ref} now."
    response = give(client, incident_id, "comms", action="nobody")
    assert flashed(client, response) == f"Nobody is the Communications lead of {ref} now."
    page = page_of(client, incident_id)
    assert (holder(page, "comms"), holder(page, "scribe")) == ("nobody", "Alice Example")
    kinds = [e.kind for e in events(slackbot, incident_id)]
    assert kinds.count(EventKind.ROLE_ASSIGNED) == 4


@pytest.mark.parametrize(
    "typed, says",
    [
        ("Sam", "More than one person is called &#39;Sam&#39;: Sam (@sam.a), Sam (@sam.b)."),
        ("Nobody Here", "Nobody in the workspace is called &#39;Nobody Here&#39;"),
        ("", "Choose a person"),
        ("<!channel>", "Nobody in the workspace is called &#39;&lt;!channel&gt;&#39;"),
    ],
)
def test_a_name_that_is_nobody_or_several_people_is_refused_keeping_the_typing(
    slackbot: Bot, client: Any, typed: str, says: str
):
    sign_in(client)
    incident_id = declare(slackbot)
    refused = give(client, incident_id, "comms", person=typed)
    assert refused.status_code == 422
    assert says in problem(refused)
    kept = re.search(r'id="person-comms"[^>]*value="([^"]*)"', text_of(refused), re.S)
    assert kept and html.unescape(kept.group(1)) == typed
    assert holder(page_of(client, incident_id), "comms") == "nobody"
    assert [e.kind for e in events(slackbot, incident_id)] == [EventKind.CREATED]


def test_an_unknown_role_or_a_closed_incident_is_refused(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    unknown = give(client, incident_id, "pilot", person="bob")
    assert unknown.status_code == 422 and "There is no role" in problem(unknown)
    with slackbot.sessions.begin() as session:
        incidents.change_status(session, incident_id, "closed", Actor(BOB), resolution=FIXED)
    page = page_of(client, incident_id)
    assert 'class="role-form"' not in page and 'id="take-lead"' not in page
    closed = give(client, incident_id, "comms", person="bob")
    assert closed.status_code == 403
    assert "only an incident admin" in problem(closed)


def test_ill_lead_then_a_handoff_with_its_summary(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    ref = f"INC-{incident_id}"
    response = post(client, f"/incidents/{incident_id}/lead")
    assert flashed(client, response) == f"You lead {ref} now."
    assert incident(slackbot, incident_id).owner == ALICE
    page = page_of(client, incident_id)
    assert holder(page, "lead") == "Alice Example"
    assert 'id="take-lead"' not in page and 'id="handoff"' in page

    sign_in(client, BOB)
    second = post(client, f"/incidents/{incident_id}/lead")
    assert second.status_code == 409
    assert "already leads" in problem(second)

    sign_in(client)
    response = give(client, incident_id, "lead", person="Bob Builder", handoff="DB failover 50%")
    assert flashed(client, response) == f"Bob Builder is the Incident lead of {ref} now."
    assert incident(slackbot, incident_id).owner == BOB
    last = [e for e in events(slackbot, incident_id) if e.kind == EventKind.ASSIGNED][-1]
    assert last.details.get("handoff") == "DB failover 50%"
    page = page_of(client, incident_id)
    assert "made Bob Builder the lead" in page and "Handoff: DB failover 50%" in page
    assert re.search(r'<dt>Lead</dt><dd id="lead"[^>]*>Bob Builder</dd>', page)

    # Left to nobody, a handoff typed anyway is nobody's to read: it is dropped, not refused.
    response = give(client, incident_id, "lead", action="nobody", handoff="stale words")
    assert flashed(client, response) == f"Nobody is the Incident lead of {ref} now."
    assert incident(slackbot, incident_id).owner is None
    assert 'id="take-lead"' in page_of(client, incident_id)


def test_without_slacks_directory_a_role_is_given_by_user_id(slackbot: Bot, client: Any):
    slackbot.fake.fail("users.list", error="missing_scope", times=None)
    sign_in(client)
    incident_id = declare(slackbot)
    page = page_of(client, incident_id)
    assert 'id="no-directory"' in page and "could not be read from Slack" in page
    assert 'list="workspace-people"' not in page and 'placeholder="U0123ABCD"' in page

    by_name = give(client, incident_id, "comms", person="Bob Builder")
    assert by_name.status_code == 422
    assert "type the person&#39;s Slack user id" in problem(by_name)
    by_id = give(client, incident_id, "comms", person=BOB)
    assert flashed(client, by_id) == f"{BOB} is the Communications lead of INC-{incident_id} now."


# --- Subscribers -------------------------------------------------------------------------------


def test_subscribe_and_unsubscribe_and_the_subscribers_are_listed_by_name(
    slackbot: Bot, client: Any
):
    incident_id = declare(slackbot, by=BOB)
    sign_in(client)
    ref = f"INC-{incident_id}"
    page = page_of(client, incident_id)
    assert 'id="subscribe"' in page and 'id="unsubscribe"' not in page

    response = post(client, f"/incidents/{incident_id}/subscribe")
    subscribed = f"You are subscribed to {ref}: its updates come to you by DM."
    assert flashed(client, response) == subscribed
    again = post(client, f"/incidents/{incident_id}/subscribe")
    assert flashed(client, again) == f"You were already subscribed to {ref}."
    with slackbot.sessions() as session:
        assert ALICE in incidents.subscribers(session, incident_id)
    page = page_of(client, incident_id)
    listed = re.search(r'<ul id="subscribers">(.*?)</ul>', page, re.S)
    assert listed and "Alice Example" in listed.group(1)
    assert 'id="unsubscribe"' in page

    response = post(client, f"/incidents/{incident_id}/unsubscribe")
    assert flashed(client, response) == f"You are unsubscribed from {ref}."
    again = post(client, f"/incidents/{incident_id}/unsubscribe")
    assert flashed(client, again) == f"You were not subscribed to {ref}."
    with slackbot.sessions() as session:
        assert ALICE not in incidents.subscribers(session, incident_id)


def test_without_the_forms_csrf_token_nothing_changes(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    for path, form in (
        ("subscribe", {}),
        ("lead", {}),
        ("roles/comms", {"person": BOB}),
        ("updates", {"summary": "forged"}),
    ):
        refused = client.post(f"/incidents/{incident_id}/{path}", data=form)
        assert refused.status_code == 403, path
    assert [e.kind for e in events(slackbot, incident_id)] == [EventKind.CREATED]
    assert incident(slackbot, incident_id).owner is None


# --- Updates -----------------------------------------------------------------------------------


def test_the_update_form_offers_the_allowed_moves_and_the_intervals(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    page = page_of(client, incident_id)
    form = re.search(r'<form[^>]*id="update-form">(.*?)</form>', page, re.S).group(1)
    status = re.search(r'name="new_status">(.*?)</select>', form, re.S).group(1)
    assert re.findall(r'<option value="(\w*)"', status) == [
        "",
        "investigating",
        "mitigated",
        "resolved",
        "closed",
    ]
    nexts = re.search(r'name="next_update">(.*?)</select>', form, re.S).group(1)
    assert re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', nexts) == [
        ("900", "15 min"),
        ("1800", "30 min"),
        ("3600", "1 h"),
        ("14400", "4 h"),
        ("", "None (the severity's reminders)"),
    ]
    assert 'name="update_resolution"' in form and 'name="update_cause"' in form
    assert "No update yet." in page


def test_an_update_is_posted_and_shown_with_the_next_one_due(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    ref = f"INC-{incident_id}"
    response = post(
        client,
        f"/incidents/{incident_id}/updates",
        seen_status="open",
        new_status="investigating",
        summary="The payment provider is failing over",
        impact="1 in 3 checkouts fail",
        next_update="1800",
    )
    message = flashed(client, response)
    assert message.startswith(f"Your update is posted on {ref}. It is investigating now.")
    assert "The next one is due" in message
    shown = incident(slackbot, incident_id)
    assert shown.status == Status.INVESTIGATING and shown.next_update_at is not None

    page = page_of(client, incident_id)
    summary = re.search(r'id="latest-summary">(.*?)</p>', page, re.S).group(1)
    assert summary == "The payment provider is failing over"
    assert "1 in 3 checkouts fail" in page
    assert re.search(r'id="next-update">Next update due ', page)
    assert "posted an update: open → investigating" in page
    # The next form offers the interval promised last.
    assert re.search(r'<option value="1800" selected>', page)

    with slackbot.sessions.begin() as session:
        incidents.get_incident(session, incident_id).next_update_at = datetime.now(UTC) - timedelta(
            minutes=2
        )
    page = page_of(client, incident_id)
    assert re.search(r'id="next-update" role="alert"><strong>Overdue</strong> since', page)


def test_a_refused_update_keeps_the_typing_and_changes_nothing(slackbot: Bot, client: Any):
    sign_in(client)
    incident_id = declare(slackbot)
    refused = post(
        client,
        f"/incidents/{incident_id}/updates",
        seen_status="open",
        new_status="resolved",
        summary="Fixed, we think",
        next_update="",
    )
    assert refused.status_code == 422
    assert "resolution" in problem(refused).lower()
    assert "Fixed, we think" in text_of(refused)
    assert re.search(r'<option value="resolved" selected>', text_of(refused))
    for form, status in (
        ({"summary": "", "next_update": "900"}, 422),
        ({"summary": "ok", "next_update": "7"}, 422),
        ({"summary": "ok", "next_update": "soon"}, 422),
        ({"summary": "ok", "new_status": "exploded"}, 422),
        ({"summary": "ok", "new_status": "mitigated", "seen_status": "mitigated"}, 409),
    ):
        answer = post(client, f"/incidents/{incident_id}/updates", **form)
        assert answer.status_code == status, (form, problem(answer))
    assert [e.kind for e in events(slackbot, incident_id)] == [EventKind.CREATED]

    resolved = post(
        client,
        f"/incidents/{incident_id}/updates",
        seen_status="open",
        new_status="resolved",
        summary="Fixed",
        update_resolution="Rolled back",
        update_cause="A bad deploy",
    )
    assert "It is resolved now." in flashed(client, resolved)
    done = incident(slackbot, incident_id)
    assert (done.status, done.resolution, done.cause) == (
        Status.RESOLVED,
        "Rolled back",
        "A bad deploy",
    )


def test_names_from_slack_are_escaped(slackbot: Bot, client: Any):
    slackbot.fake.add_user("U0EVE00001", "eve", real_name='<script>alert("x")</script>')
    sign_in(client, ADMIN_ID)
    incident_id = declare(slackbot)
    give(client, incident_id, "comms", person="U0EVE00001")
    page = page_of(client, incident_id)
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page

"""Follow-ups and the review on the pages, through Flask's test client: the incident page's
Follow-ups and Review sections and their forms (on closed incidents too), the close rule's
sentence and the admins' override, and the /followups list with its filters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, followups
from db.models import (
    Delivery,
    DeliveryAction,
    FollowUp,
    FollowUpStatus,
    Incident,
    IncidentEvent,
    ReviewStatus,
)
from tests.fakeslack import FakeSlack
from tests.slackbot import ADMIN_ID, Bot, running_bot
from tests.steps import FIXED
from tests.test_pages import ALICE, BOB, declare, flashed, post, problem, sign_in, text_of

CAROL = "U0CAROL001"


@pytest.fixture
def bot(fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]) -> Any:
    """The bot with people in its workspace, and TIMEZONE Europe/Paris."""
    fake_slack.add_user(ALICE, "alice", real_name="Alice Example")
    fake_slack.add_user(BOB, "bob", real_name="Bob Builder")
    fake_slack.add_user(CAROL, "carol", real_name="Carol Danvers")
    zone = ZoneInfo("Europe/Paris")
    with running_bot(fake_slack, engine, committing_sessions, timezone=zone) as running:
        yield running


@pytest.fixture
def tracked(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    rules = followups.FollowUpRules(tracker="jira")
    with running_bot(fake_slack, engine, committing_sessions, followup_rules=rules) as running:
        yield running


@pytest.fixture
def client(bot: Bot) -> Any:
    return bot.web.test_client()


def incident_of(bot: Bot, incident_id: int) -> Incident:
    with bot.sessions() as session:
        return incidents.get_incident(session, incident_id)


def events_of(bot: Bot, incident_id: int) -> list[IncidentEvent]:
    with bot.sessions() as session:
        return incidents.timeline(session, incident_id)


def followups_of(bot: Bot, incident_id: int) -> list[FollowUp]:
    with bot.sessions() as session:
        return followups.followups_of(session, incident_id)


def add(bot: Bot, incident_id: int, title: str = "Add a canary", **fields: Any) -> int:
    now = fields.pop("now", None)
    with bot.sessions.begin() as session:
        draft = followups.FollowUpDraft(title=title, **fields)
        rules = bot.settings.followup_rules
        return followups.add_followup(session, incident_id, draft, Actor(ALICE), rules, now=now).id


def close(bot: Bot, incident_id: int) -> None:
    with bot.sessions.begin() as session:
        incidents.change_status(session, incident_id, "resolved", Actor(ALICE), resolution=FIXED)
        incidents.change_status(session, incident_id, "closed", Actor(ALICE))


def section(page: str, section_id: str) -> str:
    found = re.search(rf'<section class="box[^"]*" id="{section_id}">(.*?)</section>', page, re.S)
    assert found, page[:3000]
    return found.group(1)


def in_two_weeks() -> str:
    return (datetime.now(ZoneInfo("Europe/Paris")).date() + timedelta(weeks=2)).isoformat()


# --- Signing in and CSRF -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/followups?owner=me"),
        ("post", "/incidents/1/followups"),
        ("post", "/incidents/1/review"),
        ("post", "/followups/1/status"),
        ("post", "/followups/1/edit"),
        ("post", "/followups/1/export"),
    ],
)
def test_a_stranger_is_sent_to_sign_in(client: Any, method: str, path: str):
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_forms_without_the_csrf_token_change_nothing(bot: Bot, client: Any):
    sign_in(client)
    number = declare(bot)
    made = add(bot, number)
    for path, form in (
        (f"/incidents/{number}/followups", {"followup_title": "Forged"}),
        (f"/followups/{made}/status", {"status": "done"}),
        (f"/followups/{made}/edit", {"title": "Forged", "seen_title": "Add a canary"}),
        (f"/incidents/{number}/review", {"went_well": "Forged", "seen_went_well": ""}),
    ):
        response = client.post(path, data={**form, "csrf_token": "not-it"})
        assert response.status_code == 403, path
    [kept] = followups_of(bot, number)
    assert (kept.title, kept.status) == ("Add a canary", FollowUpStatus.OPEN)
    assert incident_of(bot, number).went_well is None


# --- The incident page's follow-ups ------------------------------------------------------------


def test_a_follow_up_is_added_with_its_owner_by_name_and_a_due_date(bot: Bot, client: Any):
    sign_in(client)
    number = declare(bot)
    empty = section(text_of(client.get(f"/incidents/{number}")), "followups")
    assert 'id="no-followups"' in empty
    # The priorities offered are FOLLOWUP_PRIORITIES, the middle one chosen.
    assert re.search(r'<option value="medium" selected>', empty)

    response = post(
        client,
        f"/incidents/{number}/followups",
        form="followup",
        followup_title="Page on checkout <5xx>",
        followup_owner="Bob Builder",
        followup_due="in 2w",
        followup_priority="high",
    )
    [made] = followups_of(bot, number)
    assert flashed(client, response) == (
        f"FU-{made.id} is added to INC-{number}. Bob Builder is told by DM."
    )
    assert response.headers["Location"].endswith(f"/incidents/{number}#followups")
    assert (made.owner, made.due_on.isoformat(), made.priority) == (BOB, in_two_weeks(), "high")
    shown = section(text_of(client.get(f"/incidents/{number}")), "followups")
    row = re.search(rf'<tr id="FU-{made.id}".*?</tr>', shown, re.S).group(0)
    assert "Page on checkout &lt;5xx&gt;" in row  # escaped
    assert 'class="followup-owner" title="U0BOB00001">Bob Builder<' in row
    assert in_two_weeks() in row and "high" in row and ">open<" in row
    assert f'id="done-{made.id}"' in row and f'id="wontdo-{made.id}"' in row
    assert "Export" not in row  # no tracker is set up
    timeline = text_of(client.get(f"/incidents/{number}"))
    assert f"added the follow-up FU-{made.id}" in timeline


@pytest.mark.parametrize(
    "form, says",
    [
        ({"followup_title": "ab"}, "Title must be at least 3"),
        ({"followup_due": "someday"}, "&#39;someday&#39; is not a due date"),
        ({"followup_due": "2001-01-01"}, "is in the past"),
        ({"followup_owner": "Nobody Known"}, "Nobody in the workspace is called"),
        ({"followup_priority": "urgent"}, "Unknown priority"),
    ],
)
def test_a_bad_follow_up_is_refused_with_what_was_typed_kept(
    bot: Bot, client: Any, form: dict[str, str], says: str
):
    sign_in(client)
    number = declare(bot)
    typed = {"form": "followup", "followup_title": "Add a canary", **form}
    response = post(client, f"/incidents/{number}/followups", **typed)
    assert response.status_code == 422
    assert says in problem(response)
    page = section(text_of(response), "followups")
    assert f'value="{typed["followup_title"]}"' in page
    assert followups_of(bot, number) == []


def test_done_wont_do_and_reopen_from_the_page(bot: Bot, client: Any):
    sign_in(client, BOB)
    number = declare(bot)
    made = add(bot, number, owner=BOB)
    done = post(client, f"/followups/{made}/status", status="done")
    assert flashed(client, done) == f"FU-{made} is done now."
    assert done.headers["Location"].endswith(f"/incidents/{number}#FU-{made}")
    row = re.search(
        rf'<tr id="FU-{made}".*?</tr>', text_of(client.get(f"/incidents/{number}")), re.S
    )
    assert ">done<" in row.group(0) and "Bob Builder" in row.group(0)
    assert f'id="reopen-{made}"' in row.group(0) and f'id="done-{made}"' not in row.group(0)
    # A second click on Done (from a page loaded before) says so.
    again = post(client, f"/followups/{made}/status", status="done")
    assert again.status_code == 409
    assert problem(again) == f"FU-{made} is already done."
    wont = post(client, f"/followups/{made}/status", status="wont_do")
    assert flashed(client, wont) == f"FU-{made} is won&#39;t do now."
    reopened = post(client, f"/followups/{made}/status", status="open")
    assert flashed(client, reopened) == f"FU-{made} is open now."
    [kept] = followups_of(bot, number)
    assert (kept.status, kept.closed_by) == (FollowUpStatus.OPEN, None)
    assert post(client, "/followups/999999/status", status="done").status_code == 404


def test_changing_a_follow_up_sends_only_what_was_changed(bot: Bot, client: Any):
    sign_in(client)
    number = declare(bot)
    # Due yesterday (added a month ago): overdue, and a due date no form could set now.
    month_ago = datetime.now(UTC) - timedelta(days=30)
    late = (month_ago + timedelta(days=29)).date()
    made = add(bot, number, owner=BOB, due_on=late, now=month_ago)
    page = text_of(client.get(f"/incidents/{number}"))
    row = re.search(rf'<tr id="FU-{made}".*?</tr>', page, re.S).group(0)
    assert "overdue" in row
    seen = {
        "followup_id": str(made),
        "seen_title": "Add a canary",
        "seen_owner": "Bob Builder",
        "seen_due": late.isoformat(),
        "seen_priority": "medium",
    }
    assert all(f'name="{k}" value="{v}"' in page for k, v in seen.items() if k != "followup_id")
    unchanged = {"title": "Add a canary", "due": late.isoformat(), "priority": "medium"}
    # A new owner, by name; the overdue date, shown as it was, is left alone.
    response = post(client, f"/followups/{made}/edit", **seen, **unchanged, owner="Carol Danvers")
    assert flashed(client, response) == f"FU-{made} is saved."
    [kept] = followups_of(bot, number)
    assert (kept.owner, kept.due_on) == (CAROL, late)
    # Sent again from the page as it was (Bob shown): nothing the person changed, so Carol stays.
    stale = post(client, f"/followups/{made}/edit", **seen, **unchanged, owner="Bob Builder")
    assert flashed(client, stale) == f"Nothing changed in FU-{made}."
    assert followups_of(bot, number)[0].owner == CAROL
    # A date in the past is refused, and the form stays open with what was typed.
    refused = post(
        client, f"/followups/{made}/edit", **seen, title="Add a canary", due="2001-01-01"
    )
    assert refused.status_code == 422
    assert "is in the past" in problem(refused)
    assert re.search(r"<details open>\s*<summary>Change FU-", text_of(refused))
    assert 'value="2001-01-01"' in text_of(refused)
    cleared = post(client, f"/followups/{made}/edit", **seen, due="", title="Add a canary")
    assert flashed(client, cleared) == f"FU-{made} is saved."
    assert followups_of(bot, number)[0].due_on is None


def test_a_closed_incidents_follow_ups_and_review_stay_editable(bot: Bot, client: Any):
    sign_in(client)  # not an admin
    number = declare(bot)
    close(bot, number)
    page = text_of(client.get(f"/incidents/{number}"))
    assert 'id="followup-form"' in page and 'id="review-form"' in page
    assert 'id="status-forms"' not in page  # the incident itself is frozen
    added = post(
        client,
        f"/incidents/{number}/followups",
        followup_title="Add a canary",
        followup_owner=BOB,
        followup_due="in 1w",
    )
    [made] = followups_of(bot, number)
    assert flashed(client, added).startswith(f"FU-{made.id} is added to INC-{number}.")
    done = post(client, f"/followups/{made.id}/status", status="done")
    assert flashed(client, done) == f"FU-{made.id} is done now."
    reviewed = post(
        client,
        f"/incidents/{number}/review",
        went_well="Paging worked",
        seen_went_well="",
        review_status="done",
        seen_review_status="draft",
    )
    assert flashed(client, reviewed) == f"The review of INC-{number} is saved."
    kept = incident_of(bot, number)
    assert (kept.went_well, kept.review_status) == ("Paging worked", ReviewStatus.DONE)


def test_export_is_offered_with_a_tracker_and_queued_once(tracked: Bot):
    client = tracked.web.test_client()
    sign_in(client)
    number = declare(tracked)
    made = add(tracked, number, owner=BOB)
    page = text_of(client.get(f"/incidents/{number}"))
    assert f'id="export-{made}">Export to Jira</button>' in page
    response = post(client, f"/followups/{made}/export")
    assert flashed(client, response) == (
        f"FU-{made} is being exported to Jira: its ticket&#39;s link shows here once it is made."
    )
    page = text_of(client.get(f"/incidents/{number}"))
    assert f'id="export-{made}"' not in page and "export queued" in page
    again = post(client, f"/followups/{made}/export")
    assert again.status_code == 409
    with tracked.sessions() as session:
        queued = session.scalars(
            select(Delivery).where(Delivery.action == DeliveryAction.EXPORT_FOLLOWUP)
        ).all()
        assert len(queued) == 1
        # The ticket once made is a link on the page.
        followups.record_ticket(
            session,
            made,
            "jira",
            "OPS-12",
            "https://example.atlassian.net/browse/OPS-12",
            now=datetime.now(UTC),
        )
        session.commit()
    page = text_of(client.get(f"/incidents/{number}"))
    assert (
        '<a href="https://example.atlassian.net/browse/OPS-12" rel="noopener noreferrer">OPS-12'
        in page
    )
    assert "exported FU-" in page


def test_export_without_a_tracker_says_so(bot: Bot, client: Any):
    sign_in(client)
    number = declare(bot)
    made = add(bot, number)
    response = post(client, f"/followups/{made}/export")
    assert response.status_code == 422
    assert "No tracker is set up" in problem(response)


# --- The review --------------------------------------------------------------------------------


def test_the_review_is_edited_on_the_page_in_the_timezone(bot: Bot, client: Any):
    sign_in(client)
    number = declare(bot)
    page = section(text_of(client.get(f"/incidents/{number}")), "review")
    assert "(Europe/Paris; blank: when declared)" in page
    assert 'name="seen_review_status" value="draft"' in page
    started = (datetime.now(ZoneInfo("Europe/Paris")) - timedelta(hours=3)).replace(
        second=0, microsecond=0, tzinfo=None
    )
    response = post(
        client,
        f"/incidents/{number}/review",
        form="review",
        impact_started_at=started.isoformat(timespec="minutes"),
        seen_impact_started_at="",
        customer_impact="Checkout failed\r\nfor 1 in 3",
        seen_customer_impact="",
        went_badly="",
        seen_went_badly="",
        reviewer="Carol Danvers",
        seen_reviewer="",
        review_status="in_review",
        seen_review_status="draft",
    )
    assert flashed(client, response) == f"The review of INC-{number} is saved."
    assert response.headers["Location"].endswith("#review")
    kept = incident_of(bot, number)
    assert kept.impact_started_at == started.replace(tzinfo=ZoneInfo("Europe/Paris"))
    assert kept.customer_impact == "Checkout failed\nfor 1 in 3"
    assert (kept.reviewer, kept.review_status) == (CAROL, ReviewStatus.IN_REVIEW)
    page = section(text_of(client.get(f"/incidents/{number}")), "review")
    assert f'value="{started.isoformat(timespec="minutes")}"' in page
    assert "review in review, reviewer Carol Danvers" in page
    assert 'name="seen_reviewer" value="Carol Danvers"' in page
    events = events_of(bot, number)
    assert sorted(e.field for e in events if e.kind.value == "field_changed") == [
        "customer_impact",
        "impact_started_at",
        "review_status",
        "reviewer",
    ]
    # Saved again as shown (textareas send CRLF): nothing changes.
    shown = {
        "customer_impact": "Checkout failed\r\nfor 1 in 3",
        "seen_customer_impact": "Checkout failed\nfor 1 in 3",
        "review_status": "in_review",
        "seen_review_status": "in_review",
    }
    again = post(client, f"/incidents/{number}/review", **shown)
    assert flashed(client, again) == f"Nothing changed in the review of INC-{number}."


@pytest.mark.parametrize(
    "form, says",
    [
        ({"impact_started_at": "yesterday"}, "Impact start: give a date and time"),
        ({"impact_started_at": "2999-01-01T00:00"}, "Impact start can&#39;t be in the future"),
        ({"reviewer": "Nobody Known"}, "Nobody in the workspace is called"),
        ({"review_status": "finished"}, "is not a review status"),
    ],
)
def test_a_bad_review_is_refused_and_changes_nothing(
    bot: Bot, client: Any, form: dict[str, str], says: str
):
    sign_in(client)
    number = declare(bot)
    seen = {f"seen_{name}": "" for name in form}
    response = post(client, f"/incidents/{number}/review", form="review", **form, **seen)
    assert response.status_code == 422
    assert says in problem(response)
    kept = incident_of(bot, number)
    assert (kept.impact_started_at, kept.reviewer, kept.review_status) == (
        None,
        None,
        ReviewStatus.DRAFT,
    )
    ((name, value),) = form.items()
    assert f'value="{value}"' in section(text_of(response), "review") or name == "review_status"


# --- Closing waits for the follow-ups ----------------------------------------------------------


def test_closing_refused_shows_the_sentence_and_admins_may_override(bot: Bot, client: Any):
    number = declare(bot)
    made = add(bot, number)
    with bot.sessions.begin() as session:
        incidents.change_status(session, number, "resolved", Actor(ALICE), resolution=FIXED)
    sign_in(client)
    page = text_of(client.get(f"/incidents/{number}"))
    assert f"no owner or due date (FU-{made})" in section(page, "status-forms")
    assert 'name="override"' not in page  # for admins only
    refused = post(client, f"/incidents/{number}/status", status="closed", seen_status="resolved")
    assert refused.status_code == 422
    assert problem(refused).startswith(f"INC-{number} can&#39;t close yet: 1 follow-up has no")
    closing = {"status": "closed", "seen_status": "resolved"}
    forged = post(client, f"/incidents/{number}/status", **closing, override="Because")
    assert forged.status_code == 403
    assert incident_of(bot, number).status.value == "resolved"

    admin = bot.web.test_client()
    sign_in(admin, ADMIN_ID)
    page = text_of(admin.get(f"/incidents/{number}"))
    assert 'id="override" name="override"' in page
    closed = post(
        admin,
        f"/incidents/{number}/status",
        status="closed",
        seen_status="resolved",
        override="Tracked in the quarterly plan",
    )
    assert flashed(admin, closed) == f"INC-{number} is now closed."
    [moved] = [e for e in events_of(bot, number) if e.to_value == "closed"]
    assert moved.details["override"] == "Tracked in the quarterly plan"


def test_closing_goes_through_once_triaged_from_the_page(bot: Bot, client: Any):
    number = declare(bot)
    made = add(bot, number)
    with bot.sessions.begin() as session:
        incidents.change_status(session, number, "resolved", Actor(ALICE), resolution=FIXED)
    sign_in(client)
    post(client, f"/followups/{made}/status", status="wont_do")
    assert 'id="close-waits"' not in text_of(client.get(f"/incidents/{number}"))
    closed = post(client, f"/incidents/{number}/status", status="closed", seen_status="resolved")
    assert flashed(client, closed) == f"INC-{number} is now closed."


# --- The /followups list -----------------------------------------------------------------------


def listed(response: Any) -> list[str]:
    assert response.status_code == 200, text_of(response)[:2000]
    return re.findall(r'<td class="title">(.*?)</td>', text_of(response))


def test_the_list_filters_by_owner_status_overdue_and_incident(bot: Bot, client: Any):
    sign_in(client, BOB)
    first, second = declare(bot), declare(bot, "Search is slow")
    month_ago = datetime.now(UTC) - timedelta(days=30)
    add(
        bot,
        first,
        "Rotate the keys",
        owner=BOB,
        due_on=(month_ago + timedelta(days=7)).date(),
        now=month_ago,
    )
    add(bot, first, "Add a canary", owner=CAROL)
    done = add(bot, second, "Write the runbook", owner=BOB)
    with bot.sessions.begin() as session:
        followups.set_followup_status(session, done, "done", Actor(BOB))

    page = client.get("/")
    assert '<a href="/followups" id="nav-followups">Follow-ups</a>' in text_of(page)
    assert listed(client.get("/followups")) == ["Rotate the keys", "Add a canary"]  # open ones
    assert listed(client.get("/followups?status=")) == [
        "Rotate the keys",
        "Add a canary",
        "Write the runbook",
    ]
    assert listed(client.get("/followups?owner=me&status=")) == [
        "Rotate the keys",
        "Write the runbook",
    ]
    assert listed(client.get("/followups?owner=Carol+Danvers")) == ["Add a canary"]
    assert listed(client.get(f"/followups?owner={CAROL}")) == ["Add a canary"]
    assert listed(client.get("/followups?status=done")) == ["Write the runbook"]
    overdue = client.get("/followups?overdue=1")
    assert listed(overdue) == ["Rotate the keys"]
    assert "<strong>overdue</strong>" in text_of(overdue)
    assert 'id="f-overdue" name="overdue" value="1" checked' in text_of(overdue)
    assert listed(client.get(f"/followups?incident=INC-{second}&status=")) == ["Write the runbook"]
    row = re.search(r'<tr id="FU-\d+" class="problem">.*?</tr>', text_of(overdue), re.S).group(0)
    assert f'href="/incidents/{first}#FU-' in row and "Bob Builder" in row


@pytest.mark.parametrize(
    "query, says",
    [
        ("owner=Nobody+Known", "Nobody in the workspace is called"),
        ("status=finished", "Status: pick open, done or won"),
        ("incident=twelve", "Incident: "),
        ("page=0", "Page: a number from 1"),
    ],
)
def test_bad_list_filters_show_the_message(bot: Bot, client: Any, query: str, says: str):
    sign_in(client)
    response = client.get(f"/followups?{query}")
    assert response.status_code == 422
    assert says in problem(response)


def test_the_list_pages_keeping_its_filters_and_marks_done_from_the_list(bot: Bot, client: Any):
    sign_in(client, BOB)
    number = declare(bot)
    made = [add(bot, number, f"Follow-up number {n:02}", owner=BOB) for n in range(23)]
    first = client.get("/followups?owner=me")
    assert len(listed(first)) == 20
    assert "Page 1 of 2 · 23 follow-ups" in text_of(first)
    next_link = re.search(r'rel="next" href="([^"]+)"', text_of(first)).group(1)
    assert "owner=me" in next_link and "status=open" in next_link and "page=2" in next_link
    second = client.get("/followups" + next_link.replace("&amp;", "&"))
    assert listed(second) == [f"Follow-up number {n}" for n in range(20, 23)]
    # Done from the list comes back to the list, as it was.
    here = "/followups?owner=me&status=open&page=2"
    response = post(client, f"/followups/{made[22]}/status", status="done", next=here)
    assert response.headers["Location"] == here
    assert listed(client.get(here)) == ["Follow-up number 20", "Follow-up number 21"]
    # Only to this site.
    away = post(
        client, f"/followups/{made[21]}/status", status="done", next="https://evil.example/"
    )
    assert away.headers["Location"] == "/incidents"

"""Follow-ups exported to GitHub through the outbox, exactly once.

Against the fake GitHub on loopback: the issue and its hidden marker; an answer lost (late, or
the connection dropped after GitHub stored the issue) found by listing the bot's issues since the
attempt, never made twice; a 5xx that stored nothing made once after looking; rate limits that
wait; refusals retrying can't mend, given up with GitHub's reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.fakeslack import FakeSlack
from tests.faketrackers.github import FakeGitHub
from tests.trackers import (
    DUE,
    OWNER,
    Sessions,
    deliverer,
    export_rows,
    exported_followup,
    get_followup,
    now,
)

GRACE = timedelta(seconds=5)  # how soon GitHub's list is trusted after an unknown outcome


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def test_an_export_makes_one_issue_with_its_marker_and_stores_the_ticket(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, followup_id = exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github)

    result = outbox.drain(exports=True)

    assert (result.delivered, result.problems) == (1, [])
    [issue] = github.all_issues()
    assert issue["title"] == "Add an alert on checkout errors"
    body = issue["body"]
    assert body.splitlines()[0] == f"<!-- incident-bot-followup:FU-{followup_id} -->"
    for shown in (
        f"FU-{followup_id}",
        f"INC-{incident_id}",
        f"https://incidents.example/incidents/{incident_id}",
        OWNER,
        DUE.isoformat(),
        "high",
    ):
        assert shown in body
    [create] = github.calls_to("create")
    assert create.headers["authorization"] == f"Bearer {github.token}"
    assert create.headers["accept"] == "application/vnd.github+json"
    assert create.headers["x-github-api-version"] == "2022-11-28"
    followup = get_followup(sessions, followup_id)
    assert (followup.tracker, followup.ticket_key) == ("github", "acme/ops#1")
    assert followup.ticket_url == issue["html_url"]
    [row] = export_rows(sessions)
    assert row.delivered_at is not None and row.sending_since is None
    # Nothing more to do: the same drain again makes no call.
    assert outbox.drain(exports=True).delivered == 0
    assert len(github.calls_to("create")) == 1


@pytest.mark.parametrize("lost", ["dropped", "late"])
def test_an_export_whose_answer_is_lost_is_found_by_its_marker_not_made_twice(
    lost: str, github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    _, followup_id = exported_followup(sessions, "github")
    # Another follow-up's issue by the bot, and someone else's with our marker quoted: neither
    # is this follow-up's ticket.
    other_id = exported_followup(sessions, "github", title="Another one", export=False)[1]
    outbox = deliverer(sessions, fake_slack, github=github, timeout=0.5)
    if lost == "dropped":
        github.drop_after("create")
    else:
        github.answer_late("create", 2.0)
    t0 = now()

    first = outbox.drain(exports=True, now=t0)

    assert first.delivered == 0
    [problem] = first.problems
    assert problem.in_doubt and not problem.permanent
    assert f"FU-{followup_id}" in problem.explain() and "checking" in problem.explain()
    assert len(github.all_issues()) == 1, "GitHub stored the issue"
    [row] = export_rows(sessions)
    assert row.sending_since == t0 and row.delivered_at is None
    assert get_followup(sessions, followup_id).ticket_key is None
    assert other_id != followup_id

    # Too soon to trust the list: no call at all.
    calls = len(github.calls)
    early = outbox.drain(exports=True, now=t0 + GRACE - timedelta(seconds=1))
    assert (early.delivered, early.problems, len(github.calls)) == (0, [], calls)

    later = outbox.drain(exports=True, now=t0 + timedelta(minutes=1))

    assert (later.delivered, later.found, later.problems) == (1, 1, [])
    [issue] = github.all_issues()
    assert len(github.calls_to("create")) == 1
    assert get_followup(sessions, followup_id).ticket_key == f"acme/ops#{issue['number']}"
    [listed] = github.calls_to("list")
    assert listed.arg("state") == "all" and listed.arg("creator") == github.login
    assert listed.arg("since") is not None and listed.arg("since") <= f"{t0:%Y-%m-%dT%H:%M:%SZ}"
    assert len(github.calls_to("user")) == 1
    [row] = export_rows(sessions)
    assert row.delivered_at is not None and row.sending_since is None


def test_the_marker_is_found_past_the_first_page_of_the_list(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    _, followup_id = exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github)
    github.drop_after("create")
    t0 = now()
    outbox.drain(exports=True, now=t0)
    # A busy repository: 120 newer issues by the bot, so ours is on the list's second page.
    for n in range(120):
        github.issues["acme/ops"].append(
            {**github.all_issues()[0], "number": 1000 + n, "body": f"other {n}"}
        )

    later = outbox.drain(exports=True, now=t0 + timedelta(minutes=1))

    assert later.found == 1
    assert len(github.calls_to("create")) == 1
    assert [c.arg("page") for c in github.calls_to("list")] == [None, "2"]
    assert get_followup(sessions, followup_id).ticket_key == "acme/ops#1"


def test_a_5xx_that_stored_nothing_is_made_once_after_looking(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    _, followup_id = exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github)
    github.fail("create", 502, {"message": "Server Error"})
    t0 = now()

    first = outbox.drain(exports=True, now=t0)

    [problem] = first.problems
    assert problem.in_doubt and problem.error.startswith("github_502")
    assert github.all_issues() == []

    later = outbox.drain(exports=True, now=t0 + timedelta(minutes=1))

    assert (later.delivered, later.found) == (1, 0)
    assert len(github.all_issues()) == 1
    # It looked before making it again.
    routes = [c.route for c in github.calls]
    assert routes == ["create", "user", "list", "create"]
    assert get_followup(sessions, followup_id).ticket_key == "acme/ops#1"


@pytest.mark.parametrize("primary", [True, False])
def test_a_rate_limit_waits_and_is_not_a_failure(
    primary: bool, github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    _, first_id = exported_followup(sessions, "github")
    _, second_id = exported_followup(sessions, "github", title="Second follow-up")
    outbox = deliverer(sessions, fake_slack, github=github)
    github.rate_limit("create", 30, primary=primary)
    t0 = now()

    result = outbox.drain(exports=True, now=t0)

    assert (result.delivered, result.problems) == (0, [])
    # The limit is GitHub's for the whole token: the second export waits too, without a call.
    assert len(github.calls_to("create")) == 1
    rows = export_rows(sessions)
    assert all(r.failed_at is None and r.attempts == 0 for r in rows)
    assert rows[0].last_error == "ratelimited"
    assert timedelta(seconds=25) <= rows[0].next_attempt_at - t0 <= timedelta(seconds=35)
    assert outbox.drain(exports=True, now=t0 + timedelta(seconds=10)).delivered == 0
    assert len(github.calls_to("create")) == 1

    later = outbox.drain(exports=True, now=t0 + timedelta(seconds=40))

    assert later.delivered == 2
    assert len(github.all_issues()) == 2
    assert (
        get_followup(sessions, first_id).ticket_key and get_followup(sessions, second_id).ticket_key
    )


@pytest.mark.parametrize(
    ("status", "body", "said"),
    [
        (
            422,
            {"message": "Validation Failed", "errors": [{"field": "title", "code": "invalid"}]},
            "Validation Failed",
        ),
        (410, {"message": "Issues are disabled for this repo"}, "Issues are disabled"),
        (404, {"message": "Not Found"}, "Not Found"),
    ],
)
def test_a_refusal_retrying_cannot_mend_ends_the_export_with_githubs_reason(
    status: int,
    body: dict,
    said: str,
    github: FakeGitHub,
    fake_slack: FakeSlack,
    committing_sessions: Sessions,
    caplog: pytest.LogCaptureFixture,
):
    sessions = committing_sessions
    _, followup_id = exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github)
    github.fail("create", status, body)

    result = outbox.drain(exports=True)

    [problem] = result.problems
    assert problem.permanent and not problem.in_doubt
    assert f"FU-{followup_id}" in problem.explain() and "not exported" in problem.explain()
    [row] = export_rows(sessions)
    assert row.failed_at is not None and row.sending_since is None
    assert row.last_error.startswith(f"github_{status}") and said in row.last_error
    assert any(said in r.getMessage() and "permanent" in r.getMessage() for r in caplog.records)
    assert outbox.drain(exports=True, now=now() + timedelta(hours=1)).delivered == 0
    assert len(github.calls_to("create")) == 1
    assert github.all_issues() == []


def test_a_wrong_token_is_refused_for_good(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github, token="ghp_wrong")

    [problem] = outbox.drain(exports=True).problems

    assert problem.permanent and problem.error.startswith("github_401: Bad credentials")
    assert github.all_issues() == []


def test_a_repository_renamed_away_is_a_404_for_good(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    exported_followup(sessions, "github")
    outbox = deliverer(sessions, fake_slack, github=github, repo="acme/gone")

    [problem] = outbox.drain(exports=True).problems

    assert problem.permanent and problem.error.startswith("github_404")

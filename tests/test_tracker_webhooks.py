"""The trackers' word back: signed webhooks (GitHub's X-Hub-Signature-256, Jira's
X-Hub-Signature) closing or reopening a follow-up's ticket, over HTTP to the running bot; and
without a webhook secret, the scheduler's poll of open follow-ups' tickets."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.incidents import followups
from bot.incidents.followups import FollowUpRules
from bot.scheduler import Jobs
from db.models import EventKind, FollowUpStatus, IncidentEvent
from tests.fakeslack import FakeSlack
from tests.faketrackers.github import FakeGitHub, signature
from tests.faketrackers.jira import FakeJira
from tests.slackbot import Bot, running_bot
from tests.trackers import (
    Sessions,
    exported_followup,
    get_followup,
    github_settings,
    jira_settings,
    now,
)

SECRET = "webhook-secret-0123456789"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(bot: Bot, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        bot.base_url + path,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with NO_PROXY.open(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw.startswith(b"{") else {}


def github_hook(bot: Bot, body: bytes, event: str = "issues", secret: str = SECRET) -> Any:
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": signature(secret, body)}
    return post(bot, "/webhooks/github", body, headers)


def jira_hook(bot: Bot, body: bytes, secret: str = SECRET) -> Any:
    return post(bot, "/webhooks/jira", body, {"X-Hub-Signature": signature(secret, body)})


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


def with_ticket(sessions: Sessions, tracker: str, key: str, url: str) -> int:
    _, followup_id = exported_followup(sessions, tracker, export=False)
    with sessions.begin() as session:
        followups.record_ticket(session, followup_id, tracker, key, url, now=now())
    return followup_id


def status_events(sessions: Sessions, followup_id: int) -> int:
    with sessions() as session:
        return sum(
            1
            for e in session.query(IncidentEvent).filter(
                IncidentEvent.kind == EventKind.FOLLOWUP_CHANGED, IncidentEvent.field == "status"
            )
        )


# --- GitHub ------------------------------------------------------------------------------------


@pytest.fixture
def github_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: Sessions, github: FakeGitHub
) -> Iterator[Bot]:
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        followup_rules=FollowUpRules(tracker="github"),
        github=github_settings(github, SECRET),
    ) as bot:
        yield bot


def issue(number: int, state: str = "closed", reason: str | None = "completed") -> dict:
    return {"number": number, "state": state, "state_reason": reason, "body": "x"}


def test_a_signed_github_webhook_closes_and_reopens_the_follow_up(
    github_bot: Bot, github: FakeGitHub
):
    sessions = github_bot.sessions
    followup_id = with_ticket(sessions, "github", "acme/ops#7", "https://github.example/7")

    status, answer = github_hook(github_bot, github.webhook("closed", issue(7)))

    assert status == 200 and answer["followup"] == f"FU-{followup_id}"
    followup = get_followup(sessions, followup_id)
    assert followup.status == FollowUpStatus.DONE and followup.closed_by == "tracker:github:octocat"
    # GitHub redelivers: nothing changes twice.
    assert github_hook(github_bot, github.webhook("closed", issue(7)))[0] == 200
    assert status_events(sessions, followup_id) == 1

    github_hook(github_bot, github.webhook("reopened", issue(7, "open", None)))
    assert get_followup(sessions, followup_id).status == FollowUpStatus.OPEN

    github_hook(github_bot, github.webhook("closed", issue(7, reason="not_planned")))
    assert get_followup(sessions, followup_id).status == FollowUpStatus.WONT_DO


def test_github_webhooks_for_other_tickets_and_events_change_nothing(
    github_bot: Bot, github: FakeGitHub
):
    sessions = github_bot.sessions
    followup_id = with_ticket(sessions, "github", "acme/ops#7", "https://github.example/7")

    status, answer = github_hook(github_bot, github.webhook("closed", issue(8)))
    assert status == 200 and answer["followup"] is None
    assert github_hook(github_bot, github.webhook("edited", issue(7)))[0] == 200
    assert github_hook(github_bot, b'{"zen": "Keep it simple."}', event="ping") == (
        200,
        {"message": "pong"},
    )
    assert github_hook(github_bot, b"[not json")[0] == 400
    assert get_followup(sessions, followup_id).status == FollowUpStatus.OPEN


@pytest.mark.parametrize("signed_as", [None, "sha256=00", "wrong-secret", "sha1"])
def test_an_unsigned_or_badly_signed_github_webhook_is_refused_unread(
    signed_as: str | None,
    github_bot: Bot,
    github: FakeGitHub,
    caplog: pytest.LogCaptureFixture,
):
    sessions = github_bot.sessions
    followup_id = with_ticket(sessions, "github", "acme/ops#7", "https://github.example/7")
    body = github.webhook("closed", {**issue(7), "title": "secret-title-marker"})
    headers = {"X-GitHub-Event": "issues"}
    if signed_as == "wrong-secret":
        headers["X-Hub-Signature-256"] = signature("not-the-secret", body)
    elif signed_as == "sha1":
        headers["X-Hub-Signature-256"] = signature(SECRET, body).replace("sha256=", "sha1=")
    elif signed_as is not None:
        headers["X-Hub-Signature-256"] = signed_as
    caplog.set_level(logging.DEBUG)

    status, _ = post(github_bot, "/webhooks/github", body, headers)

    assert status == 401
    assert get_followup(sessions, followup_id).status == FollowUpStatus.OPEN
    assert "secret-title-marker" not in caplog.text


def get_status(bot: Bot, path: str) -> int:
    try:
        with NO_PROXY.open(bot.base_url + path, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_without_their_secret_the_webhooks_are_not_there(slackbot: Bot):
    body = FakeGitHub().webhook("closed", issue(7))
    assert github_hook(slackbot, body)[0] == 404
    assert jira_hook(slackbot, b"{}")[0] == 404
    assert get_status(slackbot, "/webhooks/github") == 405


def test_the_webhooks_answer_only_post(github_bot: Bot):
    for path in ("/webhooks/github", "/webhooks/jira"):
        assert get_status(github_bot, path) == 405


# --- Jira --------------------------------------------------------------------------------------


@pytest.fixture
def jira_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: Sessions, jira: FakeJira
) -> Iterator[Bot]:
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        followup_rules=FollowUpRules(tracker="jira"),
        jira=jira_settings(jira, SECRET),
    ) as bot:
        yield bot


def jira_issue(jira: FakeJira) -> str:
    return jira.add_issue("Alert on checkout errors")


def test_a_signed_jira_webhook_marks_the_follow_up_done_wont_do_or_open(
    jira_bot: Bot, jira: FakeJira
):
    sessions = jira_bot.sessions
    key = jira_issue(jira)
    followup_id = with_ticket(sessions, "jira", key, f"{jira.url}/browse/{key}")

    jira.resolve(key, "Done")
    status, answer = jira_hook(jira_bot, jira.webhook(key))
    assert status == 200 and answer["followup"] == f"FU-{followup_id}"
    followup = get_followup(sessions, followup_id)
    assert followup.status == FollowUpStatus.DONE
    assert followup.closed_by == "tracker:jira:Jira Admin"

    jira.resolve(key, None)
    jira_hook(jira_bot, jira.webhook(key))
    assert get_followup(sessions, followup_id).status == FollowUpStatus.OPEN

    jira.resolve(key, "Won't Do")
    jira_hook(jira_bot, jira.webhook(key))
    assert get_followup(sessions, followup_id).status == FollowUpStatus.WONT_DO

    # An update that is not the status's (a comment, say) leaves it alone.
    jira.resolve(key, None)
    body = json.loads(jira.webhook(key))
    body["changelog"] = {"items": [{"field": "assignee", "toString": "Bob"}]}
    jira_hook(jira_bot, json.dumps(body).encode())
    assert get_followup(sessions, followup_id).status == FollowUpStatus.WONT_DO


def test_a_badly_signed_jira_webhook_is_refused(jira_bot: Bot, jira: FakeJira):
    sessions = jira_bot.sessions
    key = jira_issue(jira)
    followup_id = with_ticket(sessions, "jira", key, f"{jira.url}/browse/{key}")
    jira.resolve(key, "Done")
    body = jira.webhook(key)

    assert jira_hook(jira_bot, body, secret="wrong")[0] == 401
    assert post(jira_bot, "/webhooks/jira", body, {})[0] == 401
    assert get_followup(sessions, followup_id).status == FollowUpStatus.OPEN


# --- Polling without a webhook -----------------------------------------------------------------


def test_without_a_webhook_the_poll_reads_open_tickets_and_marks_closed_ones(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: Sessions, github: FakeGitHub
):
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        followup_rules=FollowUpRules(tracker="github"),
        github=github_settings(github),  # no GITHUB_WEBHOOK_SECRET
    ) as bot:
        sessions = bot.sessions
        jobs = Jobs(bot.settings, sessions, bot.deliverer)
        _, followup_id = exported_followup(sessions, "github")
        _, still_open = exported_followup(sessions, "github", title="Still open one")
        bot.deliverer.drain(exports=True)
        github.close(1, "not_planned")
        assert get_followup(sessions, followup_id).ticket_key == "acme/ops#1"
        t0 = now() + timedelta(minutes=10)  # past the export's own check

        assert jobs.poll_tickets(t0) == 1

        assert get_followup(sessions, followup_id).status == FollowUpStatus.WONT_DO
        assert get_followup(sessions, still_open).status == FollowUpStatus.OPEN
        assert [c.path for c in github.calls_to("get")] == [
            "/repos/acme/ops/issues/1",
            "/repos/acme/ops/issues/2",
        ]
        # Asked again only after a while: a sweep soon after makes no call.
        assert jobs.poll_tickets(t0 + timedelta(minutes=1)) == 0
        assert len(github.calls_to("get")) == 2
        github.close(2)
        assert jobs.poll_tickets(t0 + timedelta(minutes=6)) == 1
        assert get_followup(sessions, still_open).status == FollowUpStatus.DONE


def test_with_a_webhook_secret_nothing_is_polled(github_bot: Bot, github: FakeGitHub):
    sessions = github_bot.sessions
    with_ticket(sessions, "github", "acme/ops#7", "https://github.example/7")
    jobs = Jobs(github_bot.settings, sessions, github_bot.deliverer)

    assert jobs.poll_tickets(now() + timedelta(hours=1)) == 0
    assert github.calls == []


def test_the_poll_reads_jira_issues_and_a_missing_one_is_not_asked_every_sweep(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: Sessions, jira: FakeJira
):
    with running_bot(
        fake_slack,
        engine,
        committing_sessions,
        followup_rules=FollowUpRules(tracker="jira"),
        jira=jira_settings(jira),
    ) as bot:
        sessions = bot.sessions
        jobs = Jobs(bot.settings, sessions, bot.deliverer)
        key = jira_issue(jira)
        done = with_ticket(sessions, "jira", key, f"{jira.url}/browse/{key}")
        gone = with_ticket(sessions, "jira", "OPS-99", f"{jira.url}/browse/OPS-99")
        jira.resolve(key, "Won't Fix")
        t0 = now() + timedelta(minutes=10)

        assert jobs.poll_tickets(t0) == 1

        assert get_followup(sessions, done).status == FollowUpStatus.WONT_DO
        assert get_followup(sessions, gone).status == FollowUpStatus.OPEN
        [read, missing] = jira.calls_to("get")
        assert read.arg("fields") == "status,resolution" and missing.status == 404
        assert jobs.poll_tickets(t0 + timedelta(minutes=1)) == 0
        assert len(jira.calls_to("get")) == 2

"""Follow-ups' tickets with the real process (`python -m bot run`, FOLLOWUP_TRACKER=github and
GITHUB_API_URL at the fake GitHub): a follow-up's export whose first answer is lost is made once
by the bot's own outbox worker (found by its marker), and a signed webhook closing the issue
marks the follow-up done."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.models import FollowUpStatus
from tests.fakeslack import FakeSlack, defaults
from tests.faketrackers.github import REPO, FakeGitHub, signature
from tests.test_run import NO_PROXY, OutputReader, bot_process, free_port, wait_until_healthy
from tests.trackers import exported_followup, get_followup

SECRET = "run-webhook-secret-42"


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def test_the_running_bot_exports_a_follow_up_once_and_hears_it_closed(
    tmp_path: Path, database_url: str, committing_sessions: sessionmaker[Session]
):
    sessions = committing_sessions
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with FakeSlack() as fake, FakeGitHub() as github:
        settings = {
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
            "INCIDENT_CHANNEL": defaults.CHANNEL_ID,
            "PORT": str(port),
            "SCHEDULER_INTERVAL": "1s",
            "FOLLOWUP_TRACKER": "github",
            "GITHUB_TOKEN": github.token,
            "GITHUB_REPO": REPO,
            "GITHUB_API_URL": github.url,
            "GITHUB_WEBHOOK_SECRET": SECRET,
        }
        with bot_process(tmp_path, **settings) as process:
            output = OutputReader(process)
            wait_until_healthy(process, base_url)
            try:
                github.drop_after("create")  # GitHub stores the issue; its answer never comes
                _, followup_id = exported_followup(sessions, "github")

                key = _wait(
                    lambda: get_followup(sessions, followup_id).ticket_key, 40, "the ticket stored"
                )
                [issue] = github.all_issues()
                assert key == f"{REPO}#{issue['number']}"
                assert len(github.calls_to("create")) == 1 and github.calls_to("list")
                assert f"incident-bot-followup:FU-{followup_id}" in issue["body"]

                body = github.webhook("closed", github.close(issue["number"]))
                request = urllib.request.Request(
                    f"{base_url}/webhooks/github",
                    data=body,
                    method="POST",
                    headers={
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "issues",
                        "X-Hub-Signature-256": signature(SECRET, body),
                    },
                )
                with NO_PROXY.open(request, timeout=10) as answer:
                    assert answer.status == 200
                    assert json.loads(answer.read())["followup"] == f"FU-{followup_id}"
                assert get_followup(sessions, followup_id).status == FollowUpStatus.DONE
            finally:
                log = output.stop()
    assert "Traceback" not in log, log
    assert f"FU-{followup_id} exported to github as {key}" in log

"""The local admin's sign-in links without Slack: made by `python -m bot link` (a process of its
own) or printed once by `python -m bot run`, each working once within minutes, never logged."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import signins
from db.models import LocalSignInLink
from tests.fakeslack import defaults
from tests.test_run import NO_SLACK, REPO_ROOT, OutputReader, bot_process, browser, free_port, visit

HINT = "Run `python -m bot link` on the bot&#39;s machine for a new one"


def link_cli(database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "link"],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "INFO", **NO_SLACK, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_link_from_the_cli_works_once_and_no_link_is_logged_after_use(
    database_url: str, committing_sessions: sessionmaker[Session]
):
    port = free_port()
    base_url = f"http://localhost:{port}"
    with bot_process(DATABASE_URL=database_url, PORT=str(port), **NO_SLACK) as process:
        output = OutputReader(process)
        output.wait_for(rf"{base_url}/auth/local\?token=[\w-]+")
        asked = link_cli(database_url, PORT=str(port))
        assert asked.returncode == 0, asked.stderr
        link = asked.stdout.strip()
        assert link.startswith(f"{base_url}/auth/local?token=")
        assert "works once, within 10 minutes" in asked.stderr
        assert "local sign-in link created" in asked.stderr  # logged, without its token
        assert link.split("token=")[1] not in asked.stderr

        person = browser()
        status, headers, _ = visit(person, link)
        assert (status, headers["Location"]) == (302, "/incidents")
        assert visit(person, f"{base_url}/incidents")[0] == 200

        status, _, page = visit(browser(), link)  # the same link again, in another browser
        assert status == 403
        assert "expired, was used already or is wrong" in page and HINT in page

        log = output.stop()
    assert process.returncode == 0, log
    assert link not in log
    assert log.count("/auth/local?token=") == 1  # the one `run` printed at its start
    assert "signed in as the local admin" in log


def test_an_expired_link_is_refused_with_how_to_get_a_new_one(
    database_url: str, committing_sessions: sessionmaker[Session]
):
    with committing_sessions.begin() as session:
        made = datetime.now(UTC) - signins.LOCAL_LINK_LIFETIME
        token = signins.create_local_link(session, now=made)
    port = free_port()
    with bot_process(DATABASE_URL=database_url, PORT=str(port), **NO_SLACK) as process:
        output = OutputReader(process)
        output.wait_for(r"/auth/local\?token=")
        status, _, page = visit(browser(), f"http://localhost:{port}/auth/local?token={token}")
        output.stop()
    assert status == 403
    assert HINT in page


def test_a_link_is_spent_once_and_stored_only_as_a_hash(session: Session):
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    token = signins.create_local_link(session, now=start)
    assert token not in session.scalars(select(LocalSignInLink.token_hash)).all()

    assert signins.use_local_link(session, token, now=start + signins.LOCAL_LINK_LIFETIME) is False
    assert signins.use_local_link(session, token, now=start) is True
    assert signins.use_local_link(session, token, now=start) is False
    assert signins.use_local_link(session, "made-up", now=start) is False


def test_the_cli_makes_no_link_when_slack_is_set_up(database_url: str):
    result = link_cli(database_url, SLACK_BOT_TOKEN=defaults.BOT_TOKEN)
    assert result.returncode == 2
    assert "Local sign-in links are for running without Slack" in result.stderr
    assert "token=" not in result.stdout

"""`python -m bot` as a user runs it: a real subprocess against a real database."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.seed import seed_incidents
from db import migrate
from db.models import Delivery, EventKind, Incident, IncidentEvent
from tests.fakeslack import FakeSlack, defaults

REPO_ROOT = Path(__file__).resolve().parent.parent

Run = Callable[..., subprocess.CompletedProcess[str]]


def run_bot(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    environ = dict(os.environ)
    # Pinned so the log lines asserted below are printed whatever the caller's shell says.
    environ["LOG_LEVEL"] = "INFO"
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def bot(database_url: str, engine: Engine) -> Run:
    """`python -m bot` against the test database (already migrated by `engine`)."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return run_bot(*args, **{"DATABASE_URL": database_url, **env})

    assert database_url.startswith("postgresql+psycopg2://")
    return run


def head_revision() -> str:
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrate(bot: Run, engine: Engine) -> None:
    result = bot("migrate")

    assert result.returncode == 0, result.stderr
    assert "Database schema is at the latest migration" in result.stderr
    with engine.connect() as connection:
        version = connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == head_revision()


def test_seed_adds_demo_incidents(
    bot: Run, engine: Engine, committing_sessions: sessionmaker[Session]
) -> None:
    result = bot("seed", "--count", "5", "--random-seed", "3")

    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"Seeded 5 demo incidents: INC-(\d+) to INC-(\d+)\.\n", result.stdout)
    assert match, result.stdout
    first, last = int(match.group(1)), int(match.group(2))
    with committing_sessions() as session:
        rows = list(session.scalars(select(Incident).order_by(Incident.id)))
        assert [r.id for r in rows] == list(range(first, last + 1))
        created = session.scalars(
            select(IncidentEvent.incident_id).where(IncidentEvent.kind == EventKind.CREATED)
        ).all()
        assert sorted(created) == [r.id for r in rows]
        assert session.scalars(select(Delivery)).all() == []
        seeded_titles = [r.title for r in rows]

    # --random-seed makes the demo data repeatable: the same generator in-process (rolled back)
    # gives the same titles.
    with engine.connect() as connection:
        transaction = connection.begin()
        with Session(bind=connection) as scratch:
            ids = seed_incidents(scratch, 5, rng=random.Random(3))
            titles = list(
                scratch.scalars(
                    select(Incident.title).where(Incident.id.in_(ids)).order_by(Incident.id)
                )
            )
        transaction.rollback()
    assert seeded_titles == titles


@pytest.mark.parametrize("count", ["0", "-4"])
def test_seed_needs_a_positive_count(bot: Run, engine: Engine, count: str) -> None:
    with engine.connect() as connection:
        before = connection.scalar(text("SELECT count(*) FROM incidents"))

    result = bot("seed", "--count", count)

    assert result.returncode == 2
    assert result.stderr.strip() == "--count must be at least 1"
    assert result.stdout == ""
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM incidents")) == before


NO_SLACK = {"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": ""}


def test_check_reports_ok(bot: Run, engine: Engine) -> None:
    with engine.connect() as connection:
        version = connection.scalar(text("SHOW server_version"))

    with FakeSlack() as fake:
        result = bot(
            "check",
            INCIDENT_ADMINS="U02B, U01A",
            INCIDENT_CATEGORIES="Outage, Vendor",
            **slack_env(fake),
        )

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "Database: DATABASE_URL",
        "Incident admins: U01A, U02B",
        "Categories: outage, vendor",
    ]
    assert lines[3:] == [
        f"OK   PostgreSQL {version} answers",
        f"OK   schema at the latest migration ({head_revision()})",
        f"OK   Slack: bot {defaults.BOT_NAME} in {defaults.TEAM_NAME} (HTTP mode)",
    ]
    assert fake.calls_to("auth.test")


def test_check_fails_on_a_token_slack_refuses(bot: Run) -> None:
    with FakeSlack() as fake:
        result = bot("check", **{**slack_env(fake), "SLACK_BOT_TOKEN": "xoxb-wrong"})

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL Slack refused the bot token (invalid_auth)." in result.stdout


def test_check_fails_without_slack_settings(bot: Run) -> None:
    result = bot("check", **NO_SLACK)

    assert result.returncode == 1
    assert "FAIL Slack: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET." in result.stdout


def slack_env(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_APP_TOKEN": "",
        "SLACK_API_URL": fake.api_url,
    }


def test_check_refuses_a_non_postgres_url_as_a_configuration_error() -> None:
    result = run_bot("check", DATABASE_URL="mysql://x")

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "DATABASE_URL must start with postgres://" in output
    assert "unreachable" not in output


def test_check_fails_when_the_database_does_not_answer() -> None:
    result = run_bot("check", DATABASE_URL="postgresql://postgres@127.0.0.1:1/incidents")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL database unreachable" in result.stdout
    assert "127.0.0.1" in result.stdout
    assert "OK " not in result.stdout


@pytest.mark.parametrize(
    ("given", "missing"),
    [("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"), ("SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN")],
)
def test_run_with_half_a_slack_setup_names_what_is_missing(
    bot: Run, given: str, missing: str
) -> None:
    """No Slack variable at all runs the web surface alone (tests/test_run.py); some is a
    mistake to point out, not a reason to start without Slack."""
    result = bot("run", **{**NO_SLACK, given: "set"})

    assert result.returncode == 2
    assert f"Can't start in HTTP mode: set {missing}. " in result.stderr
    assert 'See "Create the Slack app from manifest.yml" in README.md.' in result.stderr


def test_run_in_socket_mode_without_bot_token(bot: Run) -> None:
    result = bot("run", **{**NO_SLACK, "SLACK_APP_TOKEN": "xapp-1-A1-1-abc"})

    assert result.returncode == 2
    assert "Can't start in Socket Mode: set SLACK_BOT_TOKEN." in result.stderr


def test_run_refuses_a_bot_token_slack_rejects(bot: Run) -> None:
    """A token Slack says is invalid stops the bot with a pointer to the setup steps."""
    with FakeSlack() as fake:
        result = bot(
            "run",
            SLACK_BOT_TOKEN="xoxb-not-the-right-one",
            SLACK_SIGNING_SECRET="secret",
            SLACK_APP_TOKEN="",
            SLACK_API_URL=fake.api_url,
        )

    assert result.returncode == 2, result.stderr
    assert "Slack refused the bot token" in result.stderr
    assert "invalid_auth" in result.stderr


def test_run_refuses_sign_in_with_slack_without_a_public_url(bot: Run) -> None:
    """Slack's redirect back would otherwise be built from whatever Host a request named."""
    with FakeSlack() as fake:
        result = bot(
            "run",
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_SIGNING_SECRET=defaults.SIGNING_SECRET,
            SLACK_APP_TOKEN="",
            SLACK_API_URL=fake.api_url,
            SLACK_CLIENT_ID="1.2",
            SLACK_CLIENT_SECRET="secret",
            PUBLIC_URL="",
        )
        assert fake.calls_to("auth.test") == []

    assert result.returncode == 2, result.stderr
    assert "Configuration error: SLACK_CLIENT_ID (Sign in with Slack) needs PUBLIC_URL" in (
        result.stderr
    )

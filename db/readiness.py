"""Readiness: the database answers and its schema is at the latest migration this code knows.

`/readyz` and the `incident_bot_ready` gauge both ask this; `/healthz` (liveness) does not.
"""

from __future__ import annotations

import functools

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError

from db import migrate

UNREACHABLE = "database unreachable"


@functools.cache
def schema_head() -> str | None:
    """Alembic's head, read from the migration scripts once per process."""
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def schema_problem(connection: Connection) -> str | None:
    """Why the schema is not the one this code needs (one line), or None when it is at head.
    A database that does not answer raises."""
    try:
        current = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except ProgrammingError:  # no alembic_version table: never migrated
        current = None
    head = schema_head()
    if current == head:
        return None
    return f"schema at {current or 'nothing'}, latest is {head}: run `python -m bot migrate`"


def problem(engine: Engine) -> str | None:
    """Why this replica should not take traffic (one line), or None when it is ready."""
    try:
        with engine.connect() as connection:
            return schema_problem(connection)
    except SQLAlchemyError:  # any failure to reach the database is the answer, not a crash
        return UNREACHABLE

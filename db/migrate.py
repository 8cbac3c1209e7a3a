"""Bring the schema to Alembic's head, safely when several processes start at once."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# Arbitrary constant shared by every replica: "itmigrat" as ASCII bytes.
MIGRATION_LOCK_KEY = 0x69746D6967726174
LOCK_POLL_SECONDS = 0.2


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def upgrade(engine: Engine) -> None:
    """Run `alembic upgrade head` under an advisory lock, one transaction per migration.

    Two replicas starting together would otherwise both try to create the same tables; with the
    lock the second waits, then finds the schema at head and does nothing. The lock is held by
    the session, not a transaction, because migrations that build indexes CONCURRENTLY commit
    part way through. The second replica polls for it rather than waiting in a statement: a
    concurrent index build waits for every open transaction, a blocked lock call included.
    """
    config = alembic_config()
    with engine.connect() as connection:
        while not connection.execute(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        ).scalar_one():
            connection.commit()
            time.sleep(LOCK_POLL_SECONDS)
        connection.commit()
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            connection.rollback()
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()
    log.info("Database schema is at the latest migration")

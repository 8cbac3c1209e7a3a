"""Bring the schema to Alembic's head, safely when several processes start at once."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# Arbitrary constant shared by every replica: "itmigrat" as ASCII bytes.
MIGRATION_LOCK_KEY = 0x69746D6967726174


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def upgrade(engine: Engine) -> None:
    """Run `alembic upgrade head` under a transaction-scoped advisory lock.

    Two replicas starting together would otherwise both try to create the same tables; with the
    lock the second waits, then finds the schema at head and does nothing.
    """
    config = alembic_config()
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("Database schema is at the latest migration")

"""One typed settings object, read from the environment (and a `.env` file) once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CATEGORIES = ("outage", "degradation", "security", "data", "other")


class SettingsError(ValueError):
    """A configuration value is present but unusable."""


def _split_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    data_dir: Path
    incident_admins: frozenset[str]
    categories: tuple[str, ...]
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment plus `.env`)."""
        if environ is None:
            from dotenv import load_dotenv

            # Values already in the environment win over the file, as twelve-factor expects.
            load_dotenv(override=False)
            environ = os.environ
        categories = tuple(c.lower() for c in _split_list(environ.get("INCIDENT_CATEGORIES")))
        if any(len(c) > 64 for c in categories):
            raise SettingsError("INCIDENT_CATEGORIES: each category must be at most 64 characters")
        log_level = (environ.get("LOG_LEVEL") or "INFO").upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(
                f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {log_level!r}"
            )
        return cls(
            database_url=environ.get("DATABASE_URL") or None,
            data_dir=Path(environ.get("BOT_DATA_DIR") or ".data"),
            incident_admins=frozenset(_split_list(environ.get("INCIDENT_ADMINS"))),
            categories=categories or DEFAULT_CATEGORIES,
            log_level=log_level,
        )

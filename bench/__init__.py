"""Benchmarks: `make bench`, `make bench-ack`, `make bench-screenshot`, `make bench-faults`."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fakeslack import FakeSlack, defaults
from tests.pg import postgres_server, temporary_database
from tests.test_run import bot_process, free_port, wait_until_healthy


@contextmanager
def bench_database() -> Iterator[str]:
    """A throwaway database: on TEST_DATABASE_URL's server if set, else an embedded one."""
    server = os.environ.get("TEST_DATABASE_URL")
    print(f"Database: {'TEST_DATABASE_URL server' if server else 'embedded PostgreSQL'}")
    with (
        tempfile.TemporaryDirectory(prefix="incident-bench-") as work_dir,
        postgres_server(server, Path(work_dir)) as server_url,
        temporary_database(server_url, "incident_bench") as url,
    ):
        yield url


@contextmanager
def http_bot(
    database_url: str, fake: FakeSlack, log_level: str = "WARNING", **env: str
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`python -m bot run` in HTTP mode on a free port, healthy; yields the process and port.
    `env` adds settings."""
    port = free_port()
    with bot_process(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
        SLACK_SIGNING_SECRET=defaults.SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        PORT=str(port),
        LOG_LEVEL=log_level,
        **env,
    ) as process:
        wait_until_healthy(process, f"http://127.0.0.1:{port}")
        yield process, port

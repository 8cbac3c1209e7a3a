"""Benchmark: the REST API's list and get over 100,000 incidents, beside hand-written SQL.

    make bench-api                        # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-api  # a throwaway database on that server

The bot (`python -m bot run`, HTTP mode, waitress) answers with an API token, its schemas and
the domain's queries; the yardstick (bench/bare_api.py) answers the same requests from
hand-written SQL on raw psycopg2, also behind waitress. Requests alternate between the two over
kept-alive connections, in blocks of 50 each in turn. Prints p50/p99 and ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from bench import bench_database, http_bot
from bench.incidents import seed
from bot.incidents import tokens
from db import migrate
from db.session import make_engine, make_session_factory
from tests.fakeslack import FakeSlack
from tests.test_run import free_port

BLOCK = 50
CASES = {
    "list: active, newest first, page 1": "/api/v1/incidents?status=active",
    "list: status, severity, service (comma lists), by update": (
        "/api/v1/incidents?status=open,investigating,mitigated&severity=SEV1,SEV2"
        "&service=payments,search&sort=-updated"
    ),
}


@contextmanager
def bare_api(database_url: str) -> Iterator[int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.bare_api", str(port)], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=1).connect()
                    break
                except OSError:
                    time.sleep(0.1)
            yield port
        finally:
            child.terminate()
            child.wait(timeout=10)


def timed_get(connection: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    spent = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    json.loads(body)
    return spent


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1]


def run(database_url: str, count: int, runs: int) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    print(f"Seeding {count:,} incidents ...", flush=True)
    print(f"  seeded in {seed(engine, count):.1f} s")
    with make_session_factory(engine).begin() as session:
        token, _ = tokens.create_token(session, "bench")
    with engine.connect() as connection:
        ids = [row[0] for row in connection.execute(text("SELECT id FROM incidents"))]
    engine.dispose()
    rng = random.Random(7)
    paths = {**CASES, "get: one incident by id": None}
    results: dict[tuple[str, str], list[float]] = {(c, w): [] for c in paths for w in "ab"}
    auth = {"Authorization": f"Bearer {token}"}
    # The seeded incidents are years overdue: the bot's jobs would spend the run reminding and
    # closing thousands of them. Those jobs are off here; what is measured is the API.
    jobs_off = {"REMINDER_CADENCES": "SEV1=off,SEV2=off,SEV3=off", "AUTO_CLOSE_AFTER_DAYS": "0"}
    with (
        FakeSlack() as fake,
        http_bot(database_url, fake, **jobs_off) as (_, port),
        bare_api(database_url) as bare,
    ):
        ours = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        theirs = http.client.HTTPConnection("127.0.0.1", bare, timeout=30)
        # Blocks of 50 requests, the bot's then the yardstick's, in turn: the machine's drift
        # touches both alike, and neither server's work lands inside the other's requests.
        for block in range(runs // BLOCK + 1):
            for case, path in paths.items():
                targets = [path or f"/api/v1/incidents/{rng.choice(ids)}" for _ in range(BLOCK)]
                for side, connection, headers in (("a", ours, auth), ("b", theirs, {})):
                    times = [timed_get(connection, target, headers) for target in targets]
                    if block:  # the first block warms up
                        results[(case, side)] += times
    print(f"{'':58} {'bot p50':>8} {'p99':>7} {'SQL p50':>8} {'p99':>7} {'p50 ratio':>9}")
    for case in paths:
        a, b = results[(case, "a")], results[(case, "b")]
        print(
            f"{case:58} {pct(a, 50):8.2f} {pct(a, 99):7.2f} {pct(b, 50):8.2f} {pct(b, 99):7.2f}"
            f" {pct(a, 50) / pct(b, 50):8.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args()
    with bench_database() as url:
        run(url, args.count, args.runs)


if __name__ == "__main__":
    main()

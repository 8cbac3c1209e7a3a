"""Benchmark: ack latency of `/incident list` under 20 concurrent signed requests.

    make bench-ack                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-ack # a throwaway database on that server

Runs the real `python -m bot run` (HTTP mode, waitress) against the fake Slack, with 1,000
incidents in the database, and fires rounds of 20 simultaneous slash commands. Reports p50/p99 of
the time to the HTTP answer (Slack's 3-second ack budget) and of the time until the ephemeral
list reached the response_url.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from bench import bench_database, http_bot
from bench.incidents import seed
from db import migrate
from db.session import make_engine
from tests.fakeslack import FakeSlack, payloads, post_payload
from tests.test_run import stop


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def run(database_url: str, rounds: int, concurrency: int) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    seed(engine, 1_000)
    engine.dispose()
    with FakeSlack() as fake, http_bot(database_url, fake) as (process, port):
        url = f"http://127.0.0.1:{port}/slack/events"
        acks: list[float] = []
        answered: list[float] = []
        lock = threading.Lock()

        def one(text: str) -> None:
            command = payloads.slash_command("/incident", text, fake=fake)
            started = time.perf_counter()
            status, _, _ = post_payload(url, command)
            acked = time.perf_counter() - started
            assert status == 200, status
            fake.wait_for(lambda: fake.responses(command["response_url"]), timeout=30)
            with lock:
                acks.append(acked * 1000)
                answered.append((time.perf_counter() - started) * 1000)

        filters = ["list", "list all", "list sev1 sev2", "list all checkout", "list resolved"]
        for round_number in range(rounds + 1):
            threads = [
                threading.Thread(target=one, args=(filters[i % len(filters)],))
                for i in range(concurrency)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            if round_number == 0:  # warm-up round: connection pools, imports, caches
                acks.clear()
                answered.clear()
        stop(process)
    print(f"{rounds} rounds of {concurrency} concurrent `/incident list` requests")
    print(f"{'':36} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("HTTP ack", acks), ("list posted to response_url", answered)):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        print(f"{name:36} {p50:8.1f} {p99:8.1f} {max(values):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    with bench_database() as url:
        run(url, args.rounds, args.concurrency)


if __name__ == "__main__":
    main()

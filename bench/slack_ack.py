"""Benchmark: the bot's acks beside a bare Bolt app that only acks, in one run.

    make bench-ack                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-ack # a throwaway database on that server

The bare app (bench/bare_app.py) is Bolt with its defaults (process_before_response=False) and
an `/incident` listener that only calls ack(). Each runs as its own process, as in production,
against the fake Slack in this one (the bot with 1,000 incidents in its database), and takes the
same requests, once it has settled (a second with no timeline writes: the bot's first reminder
sweep over the seeded incidents is done):

- Socket Mode, bursts of 20 `/incident list active`: ack p50/p99;
- Socket Mode, sequential `/incident note` (a change saved before its ack): ack p50;
- HTTP (waitress), an open loop of `/incident list` at 100 a second for 10 s: ack p50/p99, and
  for the bot whether every request was answered (the list, or "busy" in the ack).

The bot is measured twice: alone, and while its REST API serves a steady 20 list requests a
second (with an API token, on the same port, `--api-rate`), as dashboards or an alerting tool
would; the API's own latencies are printed too.

Each line prints the bot's figure, the bare app's and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text

from bench import bench_database, list_path
from bench.incidents import seed
from bot.incidents import tokens
from db import migrate
from db.session import make_engine, make_session_factory
from tests.fakeslack import FakeSlack, defaults, payloads, post_payload
from tests.test_run import free_port

BUSY = "The incident bot is busy right now. Please try again in a moment."
# REST API list requests a second while the bot's acks are measured.
API_RATE = 20


@contextmanager
def api_load(slack_url: str, token: str, rate: int = API_RATE) -> Iterator[list[float]]:
    """A steady load of API lists on the bot's port; yields their times (ms, inf for a failure)."""
    host, port = slack_url.removeprefix("http://").split("/")[0].split(":")
    times: list[float] = []
    if not rate:
        yield times
        return
    stop = threading.Event()

    def loop() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        start, n = time.perf_counter(), 0
        while not stop.is_set():
            time.sleep(max(0.0, start + n / rate - time.perf_counter()))
            n += 1
            began = time.perf_counter()
            connection.request(
                "GET",
                "/api/v1/incidents?status=active",
                headers={"Authorization": f"Bearer {token}"},
            )
            response = connection.getresponse()
            response.read()
            ok = response.status == 200
            times.append((time.perf_counter() - began) * 1000 if ok else float("inf"))

    thread = threading.Thread(target=loop, name="api-load", daemon=True)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join(timeout=30)


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


@contextmanager
def process(fake: FakeSlack, database_url: str, who: str, mode: str) -> Iterator[str]:
    """The bot (`python -m bot run`) or the bare app as its own process; yields its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET if mode == "http" else "",
        "SLACK_APP_TOKEN": defaults.APP_TOKEN if mode == "socket" else "",
        "SLACK_API_URL": fake.api_url,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "HTTPS_PROXY": "",
        "HTTP_PROXY": "",
    }
    command = ["-m", "bot", "run"] if who == "bot" else ["-m", "bench.bare_app", mode, str(port)]
    with tempfile.TemporaryFile("w+") as log:  # a pipe nobody reads would block a chatty child
        child = subprocess.Popen(
            [sys.executable, *command], env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            url = f"http://127.0.0.1:{port}/slack/events"
            if mode == "socket":
                before = fake.socket_mode.connections_total
                fake.socket_mode.wait_connected(count=before + 1, timeout=60)
            else:
                wait_listening(port)
            settle(database_url)
            yield url
        finally:
            child.terminate()
            child.wait(timeout=20)
            if mode == "socket":
                fake.socket_mode.drop_connections()
            if child.returncode not in (0, -signal.SIGTERM):
                log.seek(0)
                print(f"{who} exited with {child.returncode}:\n{log.read()[-2_000:]}")


def settle(database_url: str, quiet: float = 1.0, timeout: float = 60) -> None:
    """Wait until nothing is written to the timeline for `quiet` seconds: a starting bot's first
    reminder sweep over the seeded (overdue) incidents is not what the acks are measured against.
    """
    engine = make_engine(database_url)
    try:
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                count = connection.execute(text("SELECT count(*) FROM incident_events")).scalar()
            if count != seen:
                seen, since = count, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)
    finally:
        engine.dispose()


def wait_listening(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


def socket_acks(
    fake: FakeSlack, text: str, *, burst: int, rounds: int, urls: list[str] | None = None
) -> list[float]:
    """Ack times (ms) of `rounds` bursts of `burst` simultaneous commands over Socket Mode; each
    command's response_url is added to `urls`."""
    times: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        command = payloads.slash_command("/incident", text, fake=fake)
        started = time.perf_counter()
        envelope = fake.socket_mode.send_envelope(None, command)
        fake.socket_mode.wait_ack(envelope, timeout=30)
        with lock:
            times.append((time.perf_counter() - started) * 1000)
            if urls is not None:
                urls.append(command["response_url"])

    for number in range(rounds + 1):
        threads = [threading.Thread(target=one) for _ in range(burst)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if number == 0:  # warm-up
            times.clear()
    return times


def open_loop(url: str, fake: FakeSlack, rate: int, seconds: int) -> tuple[list[float], list[Any]]:
    """POST `/incident list` on a fixed schedule; ack times (ms) and (response_url, ack body)."""
    times: list[float] = []
    sent: list[Any] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def one(n: int) -> None:
        command = payloads.slash_command("/incident", "list", fake=fake)
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
        began = time.perf_counter()
        status, _, body = post_payload(url, command, timeout=30)
        elapsed = (time.perf_counter() - began) * 1000
        with lock:
            times.append(elapsed if status == 200 else float("inf"))
            sent.append((command["response_url"], body))

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(one, range(rate * seconds)))
    return times, sent


SIDES = ("bare", "bot", "bot+api")


def run(database_url: str, rounds: int, rate: int, seconds: int, api_rate: int) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    seed(engine, 1_000)
    with make_session_factory(engine).begin() as session:
        token, _ = tokens.create_token(session, "bench-ack")
    results: dict[str, list[float]] = {"api": []}

    list_ms, floor_ms = list_path.compare(engine)
    engine.dispose()
    answered: dict[str, int] = {}
    sent: dict[str, list[Any]] = {}
    # The bot runs twice: alone, then while its REST API serves `api_rate` lists a second.
    with FakeSlack(socket_mode=True) as fake:
        fake.start_socket_mode()
        for side in SIDES:
            who = side.split("+")[0]
            with (
                process(fake, database_url, who, "socket") as url,
                api_load(url, token, api_rate if side == "bot+api" else 0) as api,
            ):
                listed: list[str] = []
                results[f"{side} burst"] = socket_acks(
                    fake, "list active", burst=20, rounds=rounds, urls=listed
                )
                if who == "bot":  # sequential changes are measured on an idle bot
                    wait_answered(fake, [(url, "") for url in listed])
                results[f"{side} sequential"] = socket_acks(
                    fake, "note 1 bench note", burst=1, rounds=50
                )
            results["api"] += api

    with FakeSlack() as fake:
        for side in SIDES:
            who = side.split("+")[0]
            with (
                process(fake, database_url, who, "http") as url,
                api_load(url, token, api_rate if side == "bot+api" else 0) as api,
            ):
                results[f"{side} open"], sent[side] = open_loop(url, fake, rate, seconds)
                if who == "bot":
                    answered[side] = wait_answered(fake, sent[side])
            results["api"] += api

    print(f"{'':44} {'bare ms':>8} {'bot ms':>8} {'ratio':>7} {'+API ms':>8} {'ratio':>7}")
    for name, key, p in (
        ("Socket Mode, bursts of 20 lists: ack p50", "burst", 50),
        ("Socket Mode, bursts of 20 lists: ack p99", "burst", 99),
        ("Socket Mode, sequential notes: ack p50", "sequential", 50),
        (f"HTTP, {rate} lists/s for {seconds} s: ack p50", "open", 50),
        (f"HTTP, {rate} lists/s for {seconds} s: ack p99", "open", 99),
    ):
        bare, bot, loaded = (pct(results[f"{side} {key}"], p) for side in SIDES)
        print(
            f"{name:44} {bare:8.1f} {bot:8.1f} {bot / bare:6.2f}x {loaded:8.1f} "
            f"{loaded / bare:6.2f}x"
        )
    print(
        f"{'List path in-process (p50) vs hand-written SQL + pre-built blocks':52} "
        f"{list_ms:9.2f} {floor_ms:9.2f} {list_ms / floor_ms:7.2f}x"
    )
    api = results["api"] or [0.0, 0.0]
    print(
        f"REST API alongside, {api_rate} lists/s: {len(api)} requests, "
        f"{sum(1 for t in api if t == float('inf'))} failed, p50 {pct(api, 50):.1f} ms, "
        f"p99 {pct(api, 99):.1f} ms"
    )
    for side in ("bot", "bot+api"):
        busy = sum(1 for _, body in sent[side] if body == BUSY)
        print(
            f"HTTP open loop ({side}): {len(sent[side])} requests, {answered[side]} answered "
            f"with the list, {busy} answered busy, {len(sent[side]) - answered[side] - busy} "
            "unanswered"
        )


def wait_answered(fake: FakeSlack, sent: list[Any], timeout: float = 60) -> int:
    """How many of the non-busy requests got their list at the response_url."""
    waiting = [url for url, body in sent if body != BUSY]
    deadline = time.monotonic() + timeout
    answered: Callable[[], int] = lambda: sum(1 for url in waiting if fake.responses(url))  # noqa: E731
    while answered() < len(waiting) and time.monotonic() < deadline:
        time.sleep(0.2)
    return answered()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--api-rate", type=int, default=API_RATE, help="API lists a second")
    args = parser.parse_args()
    with bench_database() as url:
        run(url, args.rounds, args.rate, args.seconds, args.api_rate)


if __name__ == "__main__":
    main()

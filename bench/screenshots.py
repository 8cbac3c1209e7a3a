"""Benchmark: peak memory and time to attach a 16 MiB screenshot end to end.

    make bench-screenshot                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-screenshot # a throwaway database on that server

The fake Slack (in this process) serves a PNG just under MAX_SCREENSHOT_BYTES; a child process
does what the bot does (download with the cap, validate with Pillow, store in PostgreSQL) and
reports its peak resident memory growth over a warmed-up baseline, so the fake's own copy of the
file is not counted.

The store step is measured alone (time, resident growth with Linux's high-water mark reset
before it, and the Python peak from tracemalloc) beside two yardsticks in the same run: a bare
binary `COPY ... FROM STDIN` of the same bytes into a plain table (the floor; bars: within 2x
its time, under 3x the file in memory), and the bytes sent as a parameter, hex-encoded by
psycopg2, as the bot stored them before.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

from PIL import Image

from bench import bench_database
from bot import incidents
from bot.incidents import Actor, IncidentDraft, screenshots
from bot.slack import files as slack_files
from db import migrate, staging
from db.session import make_engine, make_session_factory
from tests.fakeslack import FakeSlack, defaults

CAP = 16 * 1024 * 1024


def noise_png(side: int, seed: int = 1) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about side*side*3 bytes."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak() -> int:
    """Reset Linux's resident high-water mark (clear_refs 5) to the current size, returned."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status("VmRSS")


def step_growth(action: Callable[[], object]) -> tuple[int, float]:
    """Peak resident memory growth (bytes) and seconds of one step alone."""
    before = reset_peak()
    started = time.perf_counter()
    action()
    return _status("VmHWM") - before, time.perf_counter() - started


def python_peak(action: Callable[[], object]) -> int:
    """The most memory Python objects held at once during `action` beyond what they held before
    (tracemalloc: a statement psycopg2 builds is a Python object, so it counts)."""
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def child(args: argparse.Namespace) -> None:
    engine = make_engine(args.database_url)
    sessions = make_session_factory(engine)
    actor = Actor("U0BENCH")

    def attach(url: str) -> dict[str, float]:
        timings = {}
        started = time.perf_counter()
        data = slack_files.download(
            url, token=defaults.BOT_TOKEN, api_url=args.api_url, max_bytes=CAP
        )
        timings["download"] = time.perf_counter() - started
        started = time.perf_counter()
        image = screenshots.validate_image("big.png", data)
        del data
        timings["validate"] = time.perf_counter() - started

        def store(incident_id: int = args.incident_id) -> None:
            with sessions.begin() as session:
                screenshots.store_image(session, incident_id, actor, image)

        def hex_insert() -> None:
            # How the bytes went before: a parameter, which psycopg2 sends hex-encoded.
            with engine.begin() as connection:
                connection.exec_driver_sql(
                    "INSERT INTO bench_copy (content) VALUES (%(content)s)", {"content": image.data}
                )

        def copy_floor() -> None:
            # The yardstick: the same bytes by binary COPY into a plain table, nothing else.
            raw = engine.raw_connection()
            try:
                with raw.cursor() as cursor:
                    cursor.execute("CREATE TABLE IF NOT EXISTS bench_copy (content bytea)")
                    cursor.copy_expert(
                        "COPY bench_copy (content) FROM STDIN (FORMAT binary)",
                        staging.BinaryCopy(image.data),
                        staging.CHUNK,
                    )
                raw.commit()
            finally:
                raw.close()

        timings["peak"] = _status("VmHWM")  # download and validate; the steps below reset it
        timings["store_growth"], timings["store"] = step_growth(store)
        timings["copy_growth"], timings["copy"] = step_growth(copy_floor)
        timings["hex_growth"], timings["hex"] = step_growth(hex_insert)
        timings["store_python"] = python_peak(lambda: store(args.second_incident_id))
        timings["hex_python"] = python_peak(hex_insert)
        return timings

    attach(args.small_url)  # warm up: imports, pool, Pillow plugins, psycopg2 buffers
    baseline = reset_peak()
    timings = attach(args.big_url)
    print(json.dumps({"baseline": baseline, **timings}))


def parent() -> None:
    big = noise_png(2300)
    assert len(big) <= CAP, len(big)
    small = noise_png(64)
    with bench_database() as url, FakeSlack() as fake:
        engine = make_engine(url)
        migrate.upgrade(engine)
        with make_session_factory(engine).begin() as session:
            incident = incidents.declare(
                session, IncidentDraft(title="Bench", severity="SEV3"), Actor("U0BENCH")
            )
            incident_id = incident.id
            second = incidents.declare(
                session, IncidentDraft(title="Bench two", severity="SEV3"), Actor("U0BENCH")
            )
            second_incident_id = second.id
        engine.dispose()
        big_file = fake.add_file("big.png", big, "image/png")
        small_file = fake.add_file("small.png", small, "image/png")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.screenshots",
                "--child",
                "--database-url",
                url,
                "--api-url",
                fake.api_url,
                "--incident-id",
                str(incident_id),
                "--second-incident-id",
                str(second_incident_id),
                "--big-url",
                big_file["url_private_download"],
                "--small-url",
                small_file["url_private_download"],
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    growth = (
        max(figures["peak"], figures["baseline"] + figures["store_growth"]) - figures["baseline"]
    )
    mib = 1024 * 1024
    print(f"File: {len(big) / mib:.2f} MiB PNG (cap {CAP / mib:.0f} MiB)")
    print(
        f"Peak RSS growth: {growth / mib:.1f} MiB = {growth / len(big):.1f}x the file "
        f"(baseline {figures['baseline'] / mib:.0f} MiB)"
    )
    print(
        f"Time: download {figures['download'] * 1000:.0f} ms, validate "
        f"{figures['validate'] * 1000:.0f} ms, store {figures['store'] * 1000:.0f} ms"
    )
    print(f"{'store step':32} {'ms':>6} {'RSS growth':>11} {'Python peak':>12}")
    for name, key in (
        ("binary COPY into a table (floor)", "copy"),
        ("bot: COPY, then INSERT ... SELECT", "store"),
        ("bytes as a parameter (hex)", "hex"),
    ):
        python = (
            f"{figures[key + '_python'] / len(big):11.2f}x" if key + "_python" in figures else ""
        )
        print(
            f"{name:32} {figures[key] * 1000:6.0f} {figures[key + '_growth'] / len(big):10.2f}x "
            f"{python:>12}"
        )
    print(
        f"Bot's store step against the binary COPY: {figures['store'] / figures['copy']:.2f}x the "
        "time (bar 2x); memory in multiples of the file (bar 3x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url")
    parser.add_argument("--api-url")
    parser.add_argument("--incident-id", type=int)
    parser.add_argument("--second-incident-id", type=int)
    parser.add_argument("--big-url")
    parser.add_argument("--small-url")
    args = parser.parse_args()
    child(args) if args.child else parent()


if __name__ == "__main__":
    main()

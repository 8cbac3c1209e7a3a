"""Benchmark: peak memory and time to attach a 16 MiB screenshot end to end.

    make bench-screenshot                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-screenshot # a throwaway database on that server

The fake Slack (in this process) serves a PNG just under MAX_SCREENSHOT_BYTES; a child process
does what the bot does (download with the cap, validate with Pillow, store in PostgreSQL) and
reports its peak resident memory growth over a warmed-up baseline, so the fake's own copy of the
file is not counted. Target: growth under 8x the file size.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import subprocess
import sys
import time

from PIL import Image

from bench import bench_database
from bot import incidents
from bot.incidents import Actor, IncidentDraft, screenshots
from bot.slack import files as slack_files
from db import migrate
from db.session import make_engine, make_session_factory
from tests.fakeslack import FakeSlack, defaults

CAP = 16 * 1024 * 1024


def noise_png(side: int, seed: int = 1) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about side*side*3 bytes."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


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
        started = time.perf_counter()
        with sessions.begin() as session:
            screenshots.store_image(session, args.incident_id, actor, image)
        timings["store"] = time.perf_counter() - started
        return timings

    attach(args.small_url)  # warm up: imports, pool, Pillow plugins, psycopg2 buffers
    baseline = peak_rss()
    timings = attach(args.big_url)
    print(json.dumps({"baseline": baseline, "peak": peak_rss(), **timings}))


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
    growth = figures["peak"] - figures["baseline"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url")
    parser.add_argument("--api-url")
    parser.add_argument("--incident-id", type=int)
    parser.add_argument("--big-url")
    parser.add_argument("--small-url")
    args = parser.parse_args()
    child(args) if args.child else parent()


if __name__ == "__main__":
    main()

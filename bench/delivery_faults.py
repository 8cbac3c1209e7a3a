"""Fault run: Slack fails half its calls for a while; does every update arrive, once, in order?

    make bench-faults                       # embedded PostgreSQL in a temporary folder
    TEST_DATABASE_URL=... make bench-faults # a throwaway database on that server
    BENCH_OUTAGE_SECONDS=30 make bench-faults  # case B's outage shortened (default 180 s)

In real time: 5 incidents get 40 changes while the fake Slack answers 50% of chat.postMessage
and chat.update calls with HTTP 500 (edits are retried once by the client; posts never are, a
500 leaves their outcome unknown and the outbox looks for them by their tag). Each change is
drained right away, as the listeners do, and the real DeliveryWorker (its threads, and its
`api.test` probe while rows wait) retries the rest. After FAULT_SECONDS Slack recovers. Reports
changes made, replies delivered, duplicates, order violations, and the delay from each change
to its reply in Slack.

Then bench/delivery_outages.py (the bar: all delivered within 15 s of Slack's last failure,
none lost or duplicated, in order per place): case A, six posts refused around five notes to
a SEV2 with its own channel (anywhere, or in that channel only; one replica and two); case B,
all of Slack down for 180 s while a SEV1 gets 20 notes. Then bench/delivery_cases.py: late
answers, a bot killed mid-post, a flood before a SEV1.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime

from prometheus_client import generate_latest
from sqlalchemy import func, select

from bench import bench_database, delivery_cases, delivery_outages
from bot import incidents, metrics
from bot.delivery import Deliverer, DeliveryWorker
from bot.incidents import Actor, IncidentDraft
from bot.slack.app import make_client
from db import migrate
from db.models import Delivery, EventKind, Incident, IncidentEvent
from db.session import make_engine, make_session_factory
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import bot_settings

INCIDENTS = 5
CHANGES = 40
FAULT_SECONDS = 20
CHANNEL = defaults.CHANNEL_ID


def run(url: str) -> None:
    engine = make_engine(url)
    migrate.upgrade(engine)
    watched = metrics.watch(engine)
    sessions = make_session_factory(engine)
    rng = random.Random(5)
    with FakeSlack() as fake:
        settings = bot_settings(fake)
        deliverer = Deliverer(sessions, make_client(settings))
        actor = Actor(defaults.USER_ID)
        ids = []
        for n in range(INCIDENTS):
            with sessions.begin() as session:
                draft = IncidentDraft(
                    title=f"Fault run {n}", severity="SEV3", slack_channel_id=CHANNEL
                )
                ids.append(incidents.declare(session, draft, actor).id)
            deliverer.drain(incident_id=ids[-1])
        worker = DeliveryWorker(deliverer)
        worker.start()
        fake.fail_ratio(
            0.5,
            methods=["chat.postMessage", "chat.update"],
            seed=7,
            status=500,
            error="internal_error",
        )
        started = time.monotonic()
        for n in range(CHANGES):
            incident_id = rng.choice(ids)
            with sessions.begin() as session:
                incidents.add_note(session, incident_id, actor, f"update {n}")
            deliverer.drain(incident_id=incident_id)  # what a listener does after its change
            time.sleep(FAULT_SECONDS / CHANGES)
        while time.monotonic() - started < FAULT_SECONDS:
            time.sleep(0.1)
        fake.clear_faults()
        drained_after = delivery_cases.wait_delivered(sessions)
        report(sessions, fake, ids, drained_after)
        print_scrape()
        worker.stop()
    watched.close()
    outcomes = delivery_outages.run(sessions, lambda: delivery_cases.empty(engine))
    delivery_cases.run(url, engine, sessions)
    engine.dispose()
    print("\nThe bar (within 15 s of Slack's last failure, 0 lost, 0 duplicated, in order):")
    for outcome in outcomes:
        recovered = "-" if outcome.recovered is None else f"{outcome.recovered:.1f} s"
        print(f"  {'PASS' if outcome.passed else 'FAIL'}  {outcome.name}: {recovered}")


def print_scrape() -> None:
    """What /metrics shows after the run (it serves this registry), histogram buckets left out."""
    print("\n/metrics after the fault run:")
    for line in generate_latest(metrics.REGISTRY).decode().splitlines():
        if line.startswith("incident_bot_") and "_bucket{" not in line:
            print(f"  {line}")


def report(sessions, fake: FakeSlack, ids: list[int], drained_after: float) -> None:
    delays, delivered, duplicates, out_of_order = [], 0, 0, 0
    with sessions() as session:
        for incident_id in ids:
            card_ts = session.get_one(Incident, incident_id).card_ts
            notes = session.execute(
                select(IncidentEvent.text, IncidentEvent.recorded_at)
                .where(
                    IncidentEvent.incident_id == incident_id, IncidentEvent.kind == EventKind.NOTE
                )
                .order_by(IncidentEvent.id)
            ).all()
            replies = [m for m in fake.thread(CHANNEL, card_ts)]
            texts = [m["text"] for m in replies]
            seen = [t.split("\n> ", 1)[-1] for t in texts]
            duplicates += len(seen) - len(set(seen))
            expected = [text for text, _ in notes]
            if [s for s in seen if s in expected] != expected:
                out_of_order += 1
            for text, recorded_at in notes:
                arrivals = [float(m["ts"]) for m in replies if m["text"].endswith(f"> {text}")]
                if arrivals:
                    delivered += 1
                    delays.append(arrivals[0] - recorded_at.timestamp())
        retried = session.scalar(select(func.sum(Delivery.attempts))) or 0
    print(f"changes: {CHANGES} notes on {INCIDENTS} incidents during {FAULT_SECONDS} s of faults")
    print(f"replies delivered: {delivered}; duplicates: {duplicates}; out of order: {out_of_order}")
    print(f"outbox attempts that failed and were retried: {retried}")
    print(
        f"delay change -> reply in Slack: p50 {statistics.median(delays):.1f} s, "
        f"worst {max(delays):.1f} s; all delivered {drained_after:.1f} s after Slack recovered"
    )


def main() -> None:
    took = FAULT_SECONDS + delivery_outages.OUTAGE_SECONDS + 240
    print(f"Started {datetime.now(UTC):%H:%M:%S} UTC; takes about {took:.0f} s")
    with bench_database() as url:
        run(url)


if __name__ == "__main__":
    main()

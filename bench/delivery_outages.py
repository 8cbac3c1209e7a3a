"""Slack failing, then answering again: how soon after its last failure is everything delivered?

Part of `make bench-faults`. Real time, real PostgreSQL, the fake Slack, and the real delivery
worker (`DeliveryWorker`, its threads and its `api.test` probe) on one replica or two (a second
`Deliverer` and worker on the same database, sharing nothing in memory, as a second process).

Case A: a SEV2 with its own channel; Slack answers the next six `chat.postMessage` calls with
500 (the sixth with 429), anywhere or only in the incident's channel; then five notes, each
drained right away as the listeners do.
Case B: all of Slack answers 503 for OUTAGE_SECONDS (default 180, `BENCH_OUTAGE_SECONDS`),
while 20 notes are added to a SEV1, spread over the outage.

Each case prints the time from Slack's last failed answer to the last outbox row delivered, and
per place (the card's thread, the incident channel) the notes lost, duplicated and out of order;
messages are matched by the note's text and by their tag (`metadata.event_payload.delivery_id`).
Bar: all delivered within BAR_SECONDS of Slack's last failure, none lost or duplicated, each
place in order. A row that had to wait is listed with its attempts, errors and waits.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer, DeliveryWorker
from bot.incidents import Actor, IncidentDraft
from bot.settings import Settings
from bot.slack.app import make_client
from db.models import Delivery, Incident
from tests.fakeslack import FakeSlack, defaults
from tests.fakeslack.server import Fault
from tests.slackbot import bot_settings

CHANNEL = defaults.CHANNEL_ID
ACTOR = Actor(defaults.USER_ID)
BAR_SECONDS = 15.0
CASE_A_NOTES = 5
CASE_B_NOTES = 20
OUTAGE_SECONDS = float(os.environ.get("BENCH_OUTAGE_SECONDS", "180"))
# Longer than the longest back-off (5 minutes), so a missed bar still shows its real figure.
SETTLE_TIMEOUT = 330.0
MARK = re.compile(r"\b(case-\w+-note-\d+)\b")


@dataclass
class Waited:
    """What the deliveries table showed of one row while it was not yet delivered."""

    action: str
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    latest_next_attempt: datetime | None = None
    delivered_at: datetime | None = None


@dataclass
class Outcome:
    name: str
    recovered: float | None  # last failure -> last row delivered, s; None: not all delivered
    places: dict[str, tuple[int, int, int]]  # place -> (lost, duplicated, out of order)
    tag_duplicates: int
    waited: dict[int, Waited]
    last_failure: float

    @property
    def passed(self) -> bool:
        return (
            self.recovered is not None
            and self.recovered <= BAR_SECONDS
            and self.tag_duplicates == 0
            and all(counts == (0, 0, 0) for counts in self.places.values())
        )


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


@contextmanager
def replicas(
    sessions: sessionmaker[Session], settings: Settings, count: int
) -> Iterator[list[Deliverer]]:
    """`count` replicas' outboxes, each with its running DeliveryWorker."""
    deliverers = [
        Deliverer(sessions, make_client(settings), offer_channels=True) for _ in range(count)
    ]
    workers = [DeliveryWorker(deliverer) for deliverer in deliverers]
    for worker in workers:
        worker.start()
    try:
        yield deliverers
    finally:
        for worker in workers:
            worker.stop()


def declare(sessions: sessionmaker[Session], settings: Settings, severity: str, title: str) -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(title=title, severity=severity, slack_channel_id=CHANNEL)
        incident = incidents.declare(session, draft, ACTOR, channels=settings.channel_rules)
        return incident.id


def add_note(sessions: sessionmaker[Session], deliverer: Deliverer, incident_id: int, note: str):
    with sessions.begin() as session:
        incidents.add_note(session, incident_id, ACTOR, note)
    deliverer.drain(incident_id=incident_id)  # what a listener does after its change


class Watch:
    """Polls one incident's outbox rows from a thread, noting each row that failed or waited
    (its attempts, its errors in turn, when it was due last) and when it was delivered."""

    def __init__(
        self, sessions: sessionmaker[Session], incident_id: int, follow: bool = True
    ) -> None:
        self.sessions, self.incident_id = sessions, incident_id
        self.rows: dict[int, Waited] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-watch", daemon=True)
        if follow:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.2)

    def poll(self) -> bool:
        """Note what the rows show now; True if none is left to send."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Delivery).where(Delivery.incident_id == self.incident_id)
            ).all()
        with self._lock:
            return not self._note(rows)

    def _note(self, rows: list[Delivery]) -> bool:
        """True if some row is left to send."""
        left = False
        for row in rows:
            if row.delivered_at is None and row.failed_at is None:
                left = True
            skipped = (row.last_error or "").startswith("skipped")
            quiet = row.attempts == 0 and (row.last_error is None or skipped)
            if quiet and row.id not in self.rows:
                continue
            seen = self.rows.setdefault(row.id, Waited(row.action.value))
            seen.attempts = max(seen.attempts, row.attempts)
            if row.last_error and (not seen.errors or seen.errors[-1] != row.last_error):
                seen.errors.append(row.last_error)
            if row.delivered_at is None:
                seen.latest_next_attempt = row.next_attempt_at
            seen.delivered_at = row.delivered_at
        return left

    def settled(self, timeout: float) -> bool:
        """Wait until none of the incident's rows is left to send; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.poll():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def wait_settled(sessions: sessionmaker[Session], incident_id: int) -> None:
    if not Watch(sessions, incident_id, follow=False).settled(60):
        raise TimeoutError(f"incident {incident_id}'s first rows were never delivered")


def own_channel_and_card(sessions: sessionmaker[Session], incident_id: int) -> tuple[str, str]:
    with sessions() as session:
        incident = session.get_one(Incident, incident_id)
        assert incident.own_channel_id and incident.card_ts
        return incident.own_channel_id, incident.card_ts


def place_counts(messages: list[dict], notes: list[str]) -> tuple[int, int, int]:
    """(lost, duplicated, out of order) of `notes` among `messages`, oldest first."""
    seen = [m.group(1) for message in messages if (m := MARK.search(message.get("text", "")))]
    counts = Counter(seen)
    lost = sum(1 for note in notes if not counts[note])
    duplicated = sum(n - 1 for n in counts.values())
    arrived = [note for note in dict.fromkeys(seen) if note in notes]
    expected = [note for note in notes if note in counts]
    out_of_order = sum(1 for got, want in zip(arrived, expected, strict=True) if got != want)
    return lost, duplicated, out_of_order


def tag_duplicates(fake: FakeSlack, channels: list[str]) -> int:
    """Messages carrying an outbox row's tag that another message already carries."""
    tags = Counter(
        message["metadata"]["event_payload"]["delivery_id"]
        for channel in channels
        for message in fake.messages(channel, include_replies=True)
        if isinstance(message.get("metadata"), dict)
    )
    return sum(n - 1 for n in tags.values())


def measure(
    name: str,
    sessions: sessionmaker[Session],
    fake: FakeSlack,
    watch: Watch,
    notes: list[str],
    faults: list[Fault],
) -> Outcome:
    done = watch.settled(SETTLE_TIMEOUT)
    watch.stop()
    incident_id = watch.incident_id
    hits = [fault.last_hit_at for fault in faults if fault.last_hit_at is not None]
    last_failure = max(hits) if hits else time.time()
    with sessions() as session:
        last_delivered = session.scalar(
            select(Delivery.delivered_at)
            .where(Delivery.incident_id == incident_id, Delivery.delivered_at.is_not(None))
            .order_by(Delivery.delivered_at.desc())
            .limit(1)
        )
    recovered = last_delivered.timestamp() - last_failure if done and last_delivered else None
    channel, card_ts = own_channel_and_card(sessions, incident_id)
    places = {
        "card's thread": place_counts(fake.thread(CHANNEL, card_ts), notes),
        "incident channel": place_counts(fake.messages(channel), notes),
    }
    duplicates = tag_duplicates(fake, [CHANNEL, channel])
    return Outcome(name, recovered, places, duplicates, watch.rows, last_failure)


def case_a(
    sessions: sessionmaker[Session], fake: FakeSlack, count: int, in_channel: bool
) -> Outcome:
    """A SEV2 with its channel; the next six posts fail (five 500s, then a 429); five notes."""
    where = "in the incident channel" if in_channel else "anywhere"
    name = f"A: six posts refused {where}, {plural(count, 'replica')}"
    settings = bot_settings(fake)
    with replicas(sessions, settings, count) as deliverers:
        incident_id = declare(sessions, settings, "SEV2", f"Case A {where} {count}")
        deliverers[0].drain(incident_id=incident_id)
        wait_settled(sessions, incident_id)
        channel, _ = own_channel_and_card(sessions, incident_id)
        scope = channel if in_channel else None
        watch = Watch(sessions, incident_id)
        faults = [
            fake.fail("chat.postMessage", status=500, channel=scope, times=5),
            fake.fail("chat.postMessage", status=429, channel=scope, times=1),
        ]
        notes = [f"case-a{count}-note-{n}" for n in range(CASE_A_NOTES)]
        for n, note in enumerate(notes):
            add_note(sessions, deliverers[n % count], incident_id, note)
        return measure(name, sessions, fake, watch, notes, faults)


def case_b(sessions: sessionmaker[Session], fake: FakeSlack, count: int) -> Outcome:
    """A SEV1 with its channel; Slack answers 503 to everything while 20 notes are added."""
    name = f"B: {OUTAGE_SECONDS:.0f} s outage of all Slack, {plural(count, 'replica')}"
    settings = bot_settings(fake)
    with replicas(sessions, settings, count) as deliverers:
        incident_id = declare(sessions, settings, "SEV1", "Case B outage")
        deliverers[0].drain(incident_id=incident_id)
        wait_settled(sessions, incident_id)
        watch = Watch(sessions, incident_id)
        outage = fake.fail("*", status=503, times=None)
        started = time.monotonic()
        notes = [f"case-b-note-{n}" for n in range(CASE_B_NOTES)]
        for n, note in enumerate(notes):
            time.sleep(max(0.0, started + n * OUTAGE_SECONDS / CASE_B_NOTES - time.monotonic()))
            add_note(sessions, deliverers[n % count], incident_id, note)
        time.sleep(max(0.0, started + OUTAGE_SECONDS - time.monotonic()))
        fake.clear_faults()
        ended = time.time()
        outcome = measure(name, sessions, fake, watch, notes, [outage])
    print(f"  (outage ended {ended - outcome.last_failure:.1f} s after its last failed answer)")
    return outcome


def report(outcome: Outcome) -> None:
    recovered = (
        f"{outcome.recovered:.1f} s"
        if outcome.recovered is not None
        else f"NOT all delivered within {SETTLE_TIMEOUT:.0f} s"
    )
    print(f"{outcome.name}: {'PASS' if outcome.passed else 'FAIL'}")
    print(f"  Slack's last failure -> last row delivered: {recovered} (bar {BAR_SECONDS:.0f} s)")
    for place, (lost, duplicated, out_of_order) in outcome.places.items():
        print(f"  {place}: lost {lost}, duplicated {duplicated}, out of order {out_of_order}")
    print(f"  messages carrying an outbox tag twice: {outcome.tag_duplicates}")
    for row_id, row in sorted(outcome.waited.items()):
        last = outcome.last_failure
        wait = (
            f"last due {row.latest_next_attempt.timestamp() - last:+.1f} s"
            if row.latest_next_attempt
            else "never waited"
        )
        sent = (
            f"delivered {row.delivered_at.timestamp() - last:+.1f} s"
            if row.delivered_at
            else "NOT delivered"
        )
        print(
            f"    row {row_id} {row.action}: attempts {row.attempts}, errors "
            f"{' > '.join(row.errors) or '-'}, {wait}, {sent} (from Slack's last failure)"
        )


def run(sessions: sessionmaker[Session], empty) -> list[Outcome]:
    print(f"\nSlack failing, then back (started {datetime.now(UTC):%H:%M:%S} UTC):")
    # Each row's story is printed below instead of the outbox's warnings as they happen.
    logging.getLogger("bot.delivery").setLevel(logging.ERROR)
    outcomes = []
    runs = [
        *((case_a, (count, in_channel)) for in_channel in (False, True) for count in (1, 2)),
        (case_b, (2,)),
    ]
    for case, args in runs:
        empty()
        with FakeSlack() as fake:
            outcome = case(sessions, fake, *args)
        report(outcome)
        outcomes.append(outcome)
    logging.getLogger("bot.delivery").setLevel(logging.NOTSET)
    return outcomes


def main() -> None:
    """These cases alone: `python -m bench.delivery_outages`."""
    from bench import bench_database, delivery_cases
    from db import migrate
    from db.session import make_engine, make_session_factory

    with bench_database() as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        outcomes = run(make_session_factory(engine), lambda: delivery_cases.empty(engine))
        engine.dispose()
    print(f"\n{sum(o.passed for o in outcomes)} of {len(outcomes)} cases meet the bar")


if __name__ == "__main__":
    main()

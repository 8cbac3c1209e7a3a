"""Fault cases for `make bench-faults`: late answers, a bot killed mid-post, a flood before a SEV1.

Each prints the messages expected in Slack, those delivered and those duplicated; the flood also
prints the SEV1 card's delay. Real time, real PostgreSQL, the fake Slack.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer, DeliveryWorker
from bot.incidents import Actor, IncidentDraft
from bot.slack.app import make_client
from db.models import Delivery, Incident
from tests.fakeslack import FakeSlack, defaults
from tests.slackbot import bot_settings
from tests.test_run import bot_process, free_port, wait_until_healthy

CHANNEL = defaults.CHANNEL_ID
ACTOR = Actor(defaults.USER_ID)
LATE_NOTES = 10
KILL_CARDS = 5
FLOOD = 40


def declare(sessions: sessionmaker[Session], title: str, severity: str = "SEV4") -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(title=title, severity=severity, slack_channel_id=CHANNEL)
        return incidents.declare(session, draft, ACTOR).id


def empty(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE incidents, incident_events, deliveries, slack_rate_limits CASCADE")
        )


def wait_delivered(sessions: sessionmaker[Session], timeout: float = 120) -> float:
    """Seconds until no outbox row is left to send."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with sessions() as session:
            left = session.scalar(
                select(func.count()).where(
                    Delivery.delivered_at.is_(None), Delivery.failed_at.is_(None)
                )
            )
        if not left:
            break
        time.sleep(0.1)
    return time.monotonic() - started


def tally(name: str, expected: list[str], texts: list[str]) -> None:
    counts = Counter(t for t in texts if t in expected)
    delivered = sum(1 for t in expected if counts[t])
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    print(f"{name}: expected {len(expected)}, delivered {delivered}, duplicated {duplicated}")


def card_texts(fake: FakeSlack) -> list[str]:
    return [
        m["text"]
        for m in fake.messages(CHANNEL)
        if m.get("user") == fake.bot_user_id and m.get("subtype") != "thread_broadcast"
    ]


def late_answers(database_url: str, sessions: sessionmaker[Session], fake: FakeSlack) -> None:
    """Slack stores each reply at once but answers after the client gave up (1 s)."""
    deliverer = Deliverer(sessions, make_client(replace(bot_settings(fake), slack_timeout=1)))
    worker = DeliveryWorker(deliverer)
    incident_id = declare(sessions, "Late answers")
    deliverer.drain(incident_id=incident_id)
    card_ts = sessions().get_one(Incident, incident_id).card_ts
    fake.answer_late("chat.postMessage", 2.0, times=LATE_NOTES // 2)
    worker.start()
    notes = [f"late note {n}" for n in range(LATE_NOTES)]
    for note in notes:
        with sessions.begin() as session:
            incidents.add_note(session, incident_id, ACTOR, note)
        deliverer.drain(incident_id=incident_id)
    wait_delivered(sessions)
    worker.stop()
    texts = [m["text"].split("\n> ", 1)[-1] for m in fake.thread(CHANNEL, card_ts)]
    tally("late answers (half the replies answered after the client's timeout)", notes, texts)


def killed_mid_post(database_url: str, sessions: sessionmaker[Session], fake: FakeSlack) -> None:
    """The bot is SIGKILLed after Slack stored a card and before the bot read the answer."""
    titles = [f"Killed run {n}" for n in range(KILL_CARDS)]
    for title in titles:
        declare(sessions, title)
    running: dict[str, int] = {}
    fake.after_call("chat.postMessage", lambda *_: os.kill(running["pid"], signal.SIGKILL))
    env = {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": defaults.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": defaults.SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "SLACK_TIMEOUT": "1",
        "LOG_LEVEL": "WARNING",
    }
    with bot_process(**env, PORT=str(free_port())) as first:
        running["pid"] = first.pid
        first.wait(timeout=60)
    port = free_port()
    with bot_process(**env, PORT=str(port)) as second:
        wait_until_healthy(second, f"http://127.0.0.1:{port}")
        took = wait_delivered(sessions)
    texts = [t.split("] ", 1)[-1] for t in card_texts(fake)]
    tally("killed mid-post (SIGKILL after Slack took a card)", titles, texts)
    print(f"  all cards settled {took:.1f} s after the restart (a post's lease is 6 s)")


def flood(database_url: str, sessions: sessionmaker[Session], fake: FakeSlack) -> None:
    """40 SEV4 declares while Slack takes one post a second per channel, then a SEV1."""
    fake.rate_limit_posts(per_channel_per_second=1.0)
    deliverer = Deliverer(sessions, make_client(bot_settings(fake)))
    worker = DeliveryWorker(deliverer)
    worker.start()
    titles = [f"Flood {n}" for n in range(FLOOD)]
    for title in titles:
        incident_id = declare(sessions, title)
        deliverer.drain(incident_id=incident_id)  # what the listener does after its ack
    declared = time.monotonic()
    sev1 = declare(sessions, "The SEV1", severity="SEV1")
    deliverer.drain(incident_id=sev1)
    deliverer.wake()
    card_ts = wait_for(lambda: sessions().get_one(Incident, sev1).card_ts)
    delay = (fake.posted_at(CHANNEL, card_ts) or time.monotonic()) - declared
    took = wait_delivered(sessions)
    worker.stop()
    fake.clear_rate_limits()
    texts = [t.split("] ", 1)[-1] for t in card_texts(fake)]
    tally(f"flood ({FLOOD} SEV4 cards at 1 post/s, then a SEV1)", [*titles, "The SEV1"], texts)
    waiting = FLOOD - texts.index("The SEV1")
    print(
        f"  SEV1 card in Slack {delay:.1f} s after it was declared, ahead of {waiting} SEV4 "
        f"cards still waiting; all sent {took:.0f} s later"
    )


def wait_for(get: Callable[[], object], timeout: float = 120) -> object:
    deadline = time.monotonic() + timeout
    while (value := get()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError("never happened")
        time.sleep(0.05)
    return value


def run(database_url: str, engine: Engine, sessions: sessionmaker[Session]) -> None:
    for case in (late_answers, killed_mid_post, flood):
        empty(engine)
        with FakeSlack() as fake:
            case(database_url, sessions, fake)

"""Order per place, and Slack's recovery noticed at once.

Each place (the card and its thread, the incident's own channel) gets its rows strictly in
order, and a place Slack keeps refusing holds up no other. A row that failed transiently backs
off (never past five minutes), but the first answer from Slack, to a probe or any other call,
makes every such row due at once.
"""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import update

from bot.delivery import Deliverer, DeliveryWorker
from bot.delivery.outbox import MAX_BACKOFF
from bot.delivery.recovery import RECOVERY_EVERY
from db.models import Delivery, DeliveryAction, Incident
from tests.fakeslack import FakeSlack, defaults, payloads, post_payload
from tests.test_delivery import (
    CHANNEL,
    Sessions,
    add_note,
    declare,
    deliveries,
    now,
    pending,
    replies,
    stored_card_ts,
)
from tests.test_incident_channels import declare as declare_with_channel
from tests.test_run import bot_process, free_port, stop, wait_until_healthy


def own_channel(sessions: Sessions, incident_id: int) -> str:
    with sessions() as session:
        channel = session.get_one(Incident, incident_id).own_channel_id
        assert channel
        return channel


def card_ts(sessions: Sessions, incident_id: int) -> str:
    with sessions() as session:
        ts = session.get_one(Incident, incident_id).card_ts
        assert ts
        return ts


def notes_during_an_outage(
    fake: FakeSlack, sessions: Sessions, count: int
) -> tuple[int, Deliverer]:
    """A SEV1 with its card and channel in Slack, then `count` notes while every call gets 503."""
    incident_id = declare_with_channel(sessions, severity="SEV1")
    deliverer = Deliverer(sessions, fake.client())
    assert deliverer.drain().problems == []
    fake.fail("*", status=503, times=None)
    for n in range(count):
        add_note(sessions, incident_id, f"note {n}")
        deliverer.drain(incident_id=incident_id)
    return incident_id, deliverer


def test_an_incident_channel_slack_keeps_refusing_holds_up_nothing_in_the_cards_thread(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare_with_channel(sessions, severity="SEV2")
    deliverer = Deliverer(sessions, fake_slack.client())
    assert deliverer.drain().problems == []
    channel, ts = own_channel(sessions, incident_id), card_ts(sessions, incident_id)
    fake_slack.fail("chat.postMessage", status=500, channel=channel, times=None)

    for n in range(5):
        add_note(sessions, incident_id, f"note {n}")
        deliverer.drain(incident_id=incident_id)

    in_thread = [r for r in replies(fake_slack, CHANNEL, ts) if "note" in r]
    assert [r.split("note ")[-1][0] for r in in_thread] == ["0", "1", "2", "3", "4"]
    waiting = pending(deliveries(sessions, incident_id))
    # The channel's rows wait, in order, behind the first one Slack refused; nothing else does.
    assert {r.action for r in waiting} <= {
        DeliveryAction.POST_CHANNEL,
        DeliveryAction.UPDATE_CHANNEL,
    }
    assert sum(r.action == DeliveryAction.POST_CHANNEL for r in waiting) == 5
    assert waiting[0].attempts >= 1 and all(r.attempts == 0 for r in waiting[1:])

    fake_slack.clear_faults()
    # Past the refused post's back-off, and long enough after it to look for it in Slack first.
    later = now() + timedelta(minutes=1)
    assert deliverer.drain(incident_id=incident_id, now=later).problems == []
    posted = [m["text"] for m in fake_slack.messages(channel)]
    notes = [t for t in posted if "note " in t]
    assert [t.split("note ")[-1][0] for t in notes] == ["0", "1", "2", "3", "4"]


def test_back_off_alone_never_exceeds_five_minutes(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id = declare_with_channel(sessions, severity="SEV3")
    # Refused with an answer (not a 5xx, whose post may have gone through and is looked for).
    fake_slack.fail("chat.postMessage", error="internal_error", status=200, times=None)
    deliverer = Deliverer(sessions, fake_slack.client())
    at = now()
    for _ in range(12):
        with sessions.begin() as session:
            session.execute(update(Delivery).values(next_attempt_at=at))
        deliverer.drain(incident_id=incident_id, now=at)
    [card] = [r for r in deliveries(sessions, incident_id) if r.action == DeliveryAction.POST_CARD]
    assert card.attempts == 12
    assert card.next_attempt_at - at == MAX_BACKOFF == timedelta(minutes=5)


def test_the_first_answer_after_an_outage_makes_every_waiting_row_due_at_once(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, _ = notes_during_an_outage(fake_slack, sessions, 3)
    waiting = pending(deliveries(sessions, incident_id))
    assert waiting and all(r.next_attempt_at > now() for r in waiting if r.attempts)

    # Another replica, which saw none of the failures, notices Slack is back by its probe.
    other = Deliverer(sessions, fake_slack.client())
    assert other.recovery.probe() is False  # api.test fails too: all stays as it is
    fake_slack.clear_faults()
    time.sleep(RECOVERY_EVERY.total_seconds())
    assert other.recovery.probe() is True
    assert "api.test" in [c.method for c in fake_slack.calls]
    assert all(r.next_attempt_at <= now() for r in pending(deliveries(sessions, incident_id)))
    assert other.drain().problems == []
    assert pending(deliveries(sessions, incident_id)) == []


def test_a_worker_catches_up_within_seconds_of_slack_answering_again(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    incident_id, deliverer = notes_during_an_outage(fake_slack, sessions, 4)
    # Enough failures that back-off alone would wait a minute and more.
    with sessions.begin() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.attempts > 0)
            .values(attempts=6, next_attempt_at=now() + timedelta(minutes=5))
        )
    worker = DeliveryWorker(deliverer)
    worker.start()
    try:
        time.sleep(1)
        fake_slack.clear_faults()
        back = time.monotonic()
        deadline = back + 15
        while pending(deliveries(sessions, incident_id)) and time.monotonic() < deadline:
            time.sleep(0.1)
        caught_up = time.monotonic() - back
    finally:
        worker.stop()
    assert pending(deliveries(sessions, incident_id)) == []
    assert caught_up < 10, f"caught up {caught_up:.1f} s after Slack came back"
    ts = card_ts(sessions, incident_id)
    notes = [r for r in replies(fake_slack, CHANNEL, ts) if "note " in r]
    assert [r.split("note ")[-1][0] for r in notes] == ["0", "1", "2", "3"]


def test_the_running_bot_catches_up_within_seconds_of_an_outage_ending(
    committing_sessions: Sessions, database_url: str
):
    """`python -m bot run` as a user starts it: notes added while all of Slack answers 503 reach
    the card's thread within seconds of Slack answering again, though back-off alone would
    wait minutes."""
    sessions = committing_sessions
    incident_id = declare(sessions, severity="SEV1")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (
        FakeSlack() as fake,
        bot_process(
            DATABASE_URL=database_url,
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_SIGNING_SECRET=defaults.SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            INCIDENT_CHANNEL=CHANNEL,
            PORT=str(port),
        ) as process,
    ):
        wait_until_healthy(process, base_url)
        fake.wait_for(lambda: stored_card_ts(sessions, incident_id), timeout=15)
        ts = card_ts(sessions, incident_id)
        fake.fail("*", status=503, times=None)
        for n in range(3):
            command = payloads.slash_command("/incident", f"note {incident_id} note {n}", fake=fake)
            status, _, body = post_payload(f"{base_url}/slack/events", command)
            assert status == 200 and "Note added" in body
        fake.wait_for(lambda: any(r.attempts for r in deliveries(sessions, incident_id)), 15)
        with sessions.begin() as session:  # as after a long outage: minutes of back-off ahead
            session.execute(
                update(Delivery)
                .where(Delivery.attempts > 0, Delivery.delivered_at.is_(None))
                .values(next_attempt_at=now() + timedelta(minutes=5))
            )
        fake.clear_faults()
        back = time.monotonic()

        def caught_up() -> bool:
            return len([r for r in replies(fake, CHANNEL, ts) if "note " in r]) == 3

        fake.wait_for(caught_up, timeout=15)
        took = time.monotonic() - back
        stop(process)
    assert took < 10, f"caught up {took:.1f} s after Slack came back"
    notes = [r for r in replies(fake, CHANNEL, ts) if "note " in r]
    assert [r.split("note ")[-1][0] for r in notes] == ["0", "1", "2"]

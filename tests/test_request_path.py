"""The request path: a change is committed before the ack that confirms it, in the order the
acks were given; what follows the ack waits in a bounded queue, and past its bound the ack
itself says the bot is busy."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bot.work import WORK_THREADS, WorkQueue
from db.models import EventKind, IncidentEvent
from tests.fakeslack import FakeSlack, payloads
from tests.slackbot import Bot, running_bot
from tests.test_slack_commands import thread_replies, with_card

BUSY = "The incident bot is busy right now. Please try again in a moment."


def test_twenty_notes_sent_as_fast_as_acks_return_keep_their_order(slackbot: Bot) -> None:
    number, card_ts = with_card(slackbot)

    for n in range(20):
        status, _, body = slackbot.command(f"note {number} step {n}")
        assert (status, body) == (200, f"Note added to INC-{number}.")
        # Acked means saved: the note is in the timeline before the next command is sent.
        with slackbot.sessions() as session:
            last = session.scalars(
                select(IncidentEvent.text)
                .where(IncidentEvent.kind == EventKind.NOTE)
                .order_by(IncidentEvent.id.desc())
            ).first()
        assert last == f"step {n}"

    with slackbot.sessions() as session:
        timeline = session.scalars(
            select(IncidentEvent.text)
            .where(IncidentEvent.kind == EventKind.NOTE)
            .order_by(IncidentEvent.occurred_at, IncidentEvent.id)
        ).all()
    assert timeline == [f"step {n}" for n in range(20)]
    replies = slackbot.fake.wait_for(
        lambda: len(thread_replies(slackbot, card_ts)) >= 20 and thread_replies(slackbot, card_ts),
        timeout=20,
    )
    shown = [int(re.search(r"step (\d+)\b", r["text"]).group(1)) for r in replies]  # type: ignore[union-attr]
    assert shown == list(range(20))


@pytest.fixture
def narrow_bot(
    fake_slack: FakeSlack, engine: Engine, committing_sessions: sessionmaker[Session]
) -> Iterator[Bot]:
    """A work queue of 2 behind the workers."""
    with running_bot(fake_slack, engine, committing_sessions, work_queue_limit=2) as running:
        yield running


def test_past_the_queue_bound_the_ack_says_busy_and_every_request_is_answered(
    narrow_bot: Bot,
) -> None:
    # Each answer takes Slack 2 s, so the workers stay busy while the queue fills.
    narrow_bot.fake.delay("response_url", 2.0)
    urls: list[str] = []
    acks: list[str] = []
    for _ in range(14):
        command = payloads.slash_command("/incident", "list", fake=narrow_bot.fake)
        started = time.monotonic()
        status, _, body = narrow_bot.post(command)
        assert status == 200
        assert time.monotonic() - started < 0.5  # acks never wait for the work
        acks.append(body)
        urls.append(command["response_url"])

    busy = [url for url, body in zip(urls, acks, strict=True) if body == BUSY]
    queued = [url for url, body in zip(urls, acks, strict=True) if body == ""]
    assert len(queued) == WORK_THREADS + 2  # one at work on each thread, and 2 waiting
    assert len(busy) == 14 - len(queued)
    narrow_bot.fake.wait_for(
        lambda: all(narrow_bot.fake.responses(url) for url in queued), timeout=15
    )
    assert all(narrow_bot.fake.responses(url) == [] for url in busy)


def test_a_full_queue_never_refuses_a_change(narrow_bot: Bot) -> None:
    """A change is saved and confirmed whatever the queue holds; its Slack updates then wait in
    the outbox for the delivery worker threads instead of an ack worker."""
    number, _ = with_card(narrow_bot)
    narrow_bot.fake.delay("response_url", 2.0)
    for _ in range(12):
        narrow_bot.post(payloads.slash_command("/incident", "list", fake=narrow_bot.fake))

    status, _, body = narrow_bot.command(f"status {number} investigating")

    assert (status, body) == (200, f"INC-{number} is now investigating.")


def test_the_work_queue_runs_jobs_in_order_and_finishes_them_on_shutdown() -> None:
    done: list[int] = []
    work = WorkQueue(limit=100, threads=1)
    for n in range(50):
        assert work.submit(done.append, n)
    work.shutdown()
    assert done == list(range(50))


def test_a_failing_job_does_not_stop_the_worker() -> None:
    done: list[str] = []
    work = WorkQueue(limit=10, threads=1)

    def broken() -> None:
        raise RuntimeError("boom")

    assert work.submit(broken)
    assert work.submit(done.append, "after")
    work.shutdown()
    assert done == ["after"]


def test_a_full_work_queue_refuses_more() -> None:
    import threading

    release = threading.Event()
    work = WorkQueue(limit=1, threads=1)
    assert work.submit(release.wait)  # taken by the worker
    deadline = time.monotonic() + 5
    while work.depth() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert work.submit(release.wait)  # waits in the queue
    assert not work.submit(release.wait)  # past the bound
    release.set()
    work.shutdown()

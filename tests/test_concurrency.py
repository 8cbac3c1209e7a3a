"""Concurrent changes to one incident, each on its own connection with real commits."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, IncidentDraft, IncidentError, TransitionNotAllowed
from db.models import EventKind, Incident, IncidentEvent, Status

ALICE = Actor("U0ALICE")
BOB = Actor("U0BOB")


def declare(sessions: sessionmaker[Session], status: Status = Status.OPEN) -> int:
    with sessions.begin() as session:
        incident = incidents.declare(
            session, IncidentDraft(title="Search is down", severity="SEV1"), ALICE
        )
        if status != Status.OPEN:
            incidents.change_status(session, incident.id, status, ALICE)
        return incident.id


def wait_until_blocked_on_a_lock(engine: Engine, timeout: float = 5.0) -> None:
    """Poll PostgreSQL until some other backend is waiting for a row lock."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            if waiting:
                return
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError("the second change never waited for the first one's lock")


def test_second_change_waits_for_the_first_and_is_checked_against_its_result(
    engine: Engine, committing_sessions: sessionmaker[Session]
):
    incident_id = declare(committing_sessions, Status.INVESTIGATING)
    first = committing_sessions()
    incidents.change_status(first, incident_id, "mitigated", ALICE)  # holds the row lock

    outcome: dict[str, object] = {}

    def second() -> None:
        with committing_sessions() as session:
            try:
                incidents.change_status(session, incident_id, "mitigated", BOB)
                session.commit()
                outcome["result"] = "changed"
            except IncidentError as error:
                outcome["result"] = error

    worker = threading.Thread(target=second)
    worker.start()
    wait_until_blocked_on_a_lock(engine)
    assert "result" not in outcome, "the second change must wait while the first is open"
    first.commit()
    first.close()
    worker.join(timeout=10)

    assert isinstance(outcome["result"], TransitionNotAllowed)
    assert str(outcome["result"]) == f"INC-{incident_id} is already mitigated."
    with committing_sessions() as session:
        moves = session.scalars(
            select(IncidentEvent.actor).where(
                IncidentEvent.incident_id == incident_id,
                IncidentEvent.to_value == "mitigated",
            )
        ).all()
        assert moves == ["U0ALICE"]


def test_racing_status_changes_from_two_threads_apply_once(
    committing_sessions: sessionmaker[Session],
):
    incident_id = declare(committing_sessions)
    start = threading.Barrier(2)

    def acknowledge(actor: Actor) -> str:
        with committing_sessions() as session:
            start.wait()
            try:
                incidents.change_status(session, incident_id, "investigating", actor)
                session.commit()
                return "changed"
            except TransitionNotAllowed as error:
                return str(error)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(acknowledge, [ALICE, BOB]))
    assert results == [f"INC-{incident_id} is already investigating.", "changed"]


def test_concurrent_notes_and_edits_lose_nothing(committing_sessions: sessionmaker[Session]):
    incident_id = declare(committing_sessions)
    workers, rounds = 6, 5
    start = threading.Barrier(workers)

    def work(worker: int) -> None:
        actor = Actor(f"U0WORKER{worker}")
        start.wait()
        for n in range(rounds):
            with committing_sessions.begin() as session:
                if n % 2:
                    incidents.add_note(session, incident_id, actor, f"{worker}-{n}")
                else:
                    incidents.edit(session, incident_id, actor, {"service": f"svc-{worker}-{n}"})

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, range(workers)))

    with committing_sessions() as session:
        incident = session.get(Incident, incident_id)
        notes = session.scalars(
            select(IncidentEvent.text).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.kind == EventKind.NOTE
            )
        ).all()
        edits = session.scalar(
            select(func.count()).where(
                IncidentEvent.incident_id == incident_id,
                IncidentEvent.kind == EventKind.FIELD_CHANGED,
            )
        )
    expected_notes = {f"{w}-{n}" for w in range(workers) for n in range(rounds) if n % 2}
    assert set(notes) == expected_notes and len(notes) == len(expected_notes)
    assert edits == workers * ((rounds + 1) // 2)
    # One version step per committed change: no update overwrote another.
    assert incident.version == 1 + workers * rounds

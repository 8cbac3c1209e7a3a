"""The intake of alerts (bot.incidents.intake), without HTTP: one incident per fingerprint while
it is active, a note each time the alert fires again, and no double incident from a race."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import Actor, IntakeAlert, InvalidInput, intake
from db.models import EventKind, Incident, IncidentEvent, Severity, Status
from tests.steps import FIXED

ALERTER = Actor.token("alertmanager", is_admin=False)


def alert(fingerprint: str = "disk-full:db-1", **fields: Any) -> IntakeAlert:
    values = {"title": "Disk full on db-1", "severity": "critical", "service": "db", **fields}
    return IntakeAlert(fingerprint=fingerprint, **values)


def notes_of(session: Session, incident_id: int) -> list[str | None]:
    events = incidents.timeline(session, incident_id)
    return [e.text for e in events if e.kind == EventKind.NOTE]


def test_a_new_fingerprint_declares_an_incident_that_remembers_it(session: Session):
    result = intake(session, alert(description="95% used"), ALERTER)
    assert result.created is True and result.note is None
    incident = result.incident
    assert incident.intake_fingerprint == "disk-full:db-1"
    assert (incident.title, incident.severity, incident.service) == (
        "Disk full on db-1",
        Severity.SEV1,
        "db",
    )
    assert incident.description == "95% used"
    assert incident.reporter == "token:alertmanager"
    assert session.scalar(select(Incident.intake_fingerprint).where(Incident.id == incident.id))


def test_the_same_fingerprint_while_active_is_a_note_on_the_same_incident(session: Session):
    first = intake(session, alert(), ALERTER).incident
    again = intake(session, alert(title="Disk still full", description="99% used"), ALERTER)
    assert again.created is False
    assert again.incident.id == first.id
    assert again.note is not None and again.note.actor == "token:alertmanager"
    assert notes_of(session, first.id) == ["Alert fired again: Disk still full\n\n99% used"]
    # Mitigated is still active: the alert keeps noting.
    incidents.change_status(session, first.id, Status.MITIGATED, ALERTER)
    assert intake(session, alert(), ALERTER).incident.id == first.id
    assert session.scalar(select(func.count()).select_from(Incident)) == 1


def test_another_fingerprint_or_a_resolved_incident_declares_anew(session: Session):
    first = intake(session, alert(), ALERTER).incident
    other = intake(session, alert("cpu:db-1"), ALERTER)
    assert other.created is True and other.incident.id != first.id
    incidents.change_status(session, first.id, Status.RESOLVED, ALERTER, resolution=FIXED)
    after = intake(session, alert(), ALERTER)
    assert after.created is True
    assert after.incident.id not in (first.id, other.incident.id)
    assert notes_of(session, first.id) == []


def test_the_newest_active_incident_of_a_fingerprint_gets_the_note(session: Session):
    older = intake(session, alert(), ALERTER).incident
    newer = incidents.declare(session, incidents.IncidentDraft("Disk again", "SEV2"), ALERTER)
    newer.intake_fingerprint = older.intake_fingerprint
    session.flush()
    assert intake(session, alert(), ALERTER).incident.id == newer.id
    assert notes_of(session, older.id) == []


def test_a_long_alert_is_cut_to_what_a_note_holds(session: Session):
    intake(session, alert(), ALERTER)
    long = "x" * incidents.DESCRIPTION_MAX
    note = intake(session, alert(description=long), ALERTER).note
    assert note is not None and note.text is not None
    assert len(note.text) == incidents.NOTE_MAX
    assert note.text.startswith("Alert fired again: Disk full on db-1\n\nxxx")
    assert note.text.endswith("…")


@pytest.mark.parametrize(
    ("fingerprint", "field"),
    [
        ("", "fingerprint"),
        ("   ", "fingerprint"),
        ("a\x00b", "fingerprint"),
        ("f" * (incidents.FINGERPRINT_MAX + 1), "fingerprint"),
    ],
)
def test_a_missing_or_unusable_fingerprint_is_refused(
    session: Session, fingerprint: str, field: str
):
    with pytest.raises(InvalidInput) as refused:
        intake(session, alert(fingerprint), ALERTER)
    assert refused.value.field == field
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_the_longest_fingerprint_is_kept_exactly(session: Session):
    fingerprint = " " + "f" * (incidents.FINGERPRINT_MAX - 1)
    assert intake(session, alert(fingerprint), ALERTER).incident.intake_fingerprint == fingerprint


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "x"}, "title"),
        ({"severity": "urgent"}, "severity"),
        ({"service": "s" * (incidents.SERVICE_MAX + 1)}, "service"),
        ({"description": "bad \x00 byte"}, "description"),
    ],
)
def test_a_bad_alert_is_refused_even_when_it_would_only_be_noted(
    session: Session, fields: dict[str, str], field: str
):
    incident = intake(session, alert(), ALERTER).incident
    with pytest.raises(InvalidInput) as refused:
        intake(session, alert(**fields), ALERTER)
    assert refused.value.field == field
    assert notes_of(session, incident.id) == []


def test_the_surface_declares_through_its_own_function(session: Session):
    calls = []

    def declare_with_card(s: Session, draft: incidents.IncidentDraft, actor: Actor) -> Incident:
        calls.append(draft.title)
        draft.slack_channel_id = "C0CARDS001"
        return incidents.declare(s, draft, actor)

    created = intake(session, alert(), ALERTER, declare=declare_with_card)
    assert created.incident.slack_channel_id == "C0CARDS001"
    intake(session, alert(), ALERTER, declare=declare_with_card)
    assert calls == ["Disk full on db-1"]


def _waiting_for_advisory_lock(sessions: sessionmaker[Session]) -> int:
    with sessions() as watcher:
        return watcher.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )


def test_two_alerts_at_once_make_one_incident(committing_sessions: sessionmaker[Session]):
    """The first intake holds its transaction open while the second arrives: the second must
    wait for the fingerprint's lock, then find the first's incident."""
    declaring, release = threading.Event(), threading.Event()
    results: dict[str, incidents.IntakeResult] = {}
    errors: list[BaseException] = []

    def slow_declare(s: Session, draft: incidents.IncidentDraft, actor: Actor) -> Incident:
        declaring.set()
        assert release.wait(10)
        return incidents.declare(s, draft, actor)

    def run(name: str, **kwargs: Any) -> None:
        try:
            with committing_sessions.begin() as s:
                results[name] = intake(s, alert(), ALERTER, **kwargs)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            declaring.set()

    first = threading.Thread(target=run, args=("first",), kwargs={"declare": slow_declare})
    first.start()
    assert declaring.wait(10)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    try:
        for _ in range(200):
            if _waiting_for_advisory_lock(committing_sessions) or errors:
                break
            threading.Event().wait(0.02)
        waited = _waiting_for_advisory_lock(committing_sessions)
    finally:
        release.set()
        first.join(10)
        second.join(10)
    assert errors == []
    assert waited == 1, "the second intake did not wait for the first"
    assert results["first"].created is True
    assert results["second"].created is False
    with committing_sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        kinds = s.scalars(select(IncidentEvent.kind).order_by(IncidentEvent.id)).all()
    assert kinds == [EventKind.CREATED, EventKind.NOTE]

"""The status workflow: the transition table, every disallowed move, milestones and aliases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import (
    Actor,
    Conflict,
    IncidentDraft,
    InvalidInput,
    PermissionDenied,
    TransitionNotAllowed,
)
from db.models import Delivery, EventKind, Incident, IncidentEvent, Severity, Status
from tests.steps import FIXED, resolution

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("U0ALICE")
ADMIN = Actor("U0ADMIN", is_admin=True)

# How to reach each status from open, using only allowed moves.
PATH_TO = {
    Status.OPEN: [],
    Status.INVESTIGATING: [Status.INVESTIGATING],
    Status.MITIGATED: [Status.INVESTIGATING, Status.MITIGATED],
    Status.RESOLVED: [Status.INVESTIGATING, Status.MITIGATED, Status.RESOLVED],
    Status.CLOSED: [Status.INVESTIGATING, Status.MITIGATED, Status.RESOLVED, Status.CLOSED],
}

# The workflow as the design states it, written out independently of bot.incidents.TRANSITIONS.
EXPECTED_ALLOWED = {
    (Status.OPEN, Status.INVESTIGATING),
    (Status.OPEN, Status.MITIGATED),
    (Status.OPEN, Status.RESOLVED),
    (Status.OPEN, Status.CLOSED),
    (Status.INVESTIGATING, Status.MITIGATED),
    (Status.INVESTIGATING, Status.RESOLVED),
    (Status.INVESTIGATING, Status.CLOSED),
    (Status.MITIGATED, Status.INVESTIGATING),
    (Status.MITIGATED, Status.RESOLVED),
    (Status.MITIGATED, Status.CLOSED),
    (Status.RESOLVED, Status.INVESTIGATING),
    (Status.RESOLVED, Status.CLOSED),
}


def make_incident(session: Session, status: Status = Status.OPEN, **draft: object) -> Incident:
    fields = {"title": "Checkout is failing", "severity": "SEV2", **draft}
    incident = incidents.declare(session, IncidentDraft(**fields), ALICE, now=T0)
    for step, target in enumerate(PATH_TO[status], start=1):
        incidents.change_status(
            session,
            incident.id,
            target,
            ALICE,
            now=T0 + timedelta(minutes=step),
            resolution=resolution(target),
        )
    session.commit()
    return incident


def snapshot(session: Session, incident: Incident) -> tuple:
    session.refresh(incident)
    events = session.scalar(select(func.count()).where(IncidentEvent.incident_id == incident.id))
    return (incident.status, incident.version, incident.resolved_at, incident.closed_at, events)


ALL_PAIRS = list(itertools.product(Status, Status))


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS, ids=lambda s: s.value)
def test_every_transition_follows_the_table(session: Session, current: Status, target: Status):
    incident = make_incident(session, current)
    before = snapshot(session, incident)

    def move() -> None:
        at = T0 + timedelta(hours=1)
        incidents.change_status(
            session, incident.id, target, ALICE, now=at, resolution=resolution(target)
        )

    if (current, target) in EXPECTED_ALLOWED:
        move()
        assert incident.status == target
        return
    with pytest.raises((TransitionNotAllowed, PermissionDenied)) as error:
        move()
    message = str(error.value)
    assert f"INC-{incident.id}" in message
    if current == target:
        assert message == f"INC-{incident.id} is already {current.value}."
    elif current == Status.CLOSED:
        assert "closed" in message
    else:
        allowed = [t.value for t in Status if (current, t) in EXPECTED_ALLOWED]
        assert message.endswith(f"Allowed next: {', '.join(allowed)}.")
    assert snapshot(session, incident) == before, "a refused change must change nothing"


def test_the_table_is_the_one_the_design_describes():
    table = {
        (current, target)
        for current in Status
        for target in incidents.allowed_next_statuses(current)
    }
    assert table == EXPECTED_ALLOWED
    assert incidents.allowed_next_statuses(Status.CLOSED, is_admin=True) == [Status.INVESTIGATING]
    assert incidents.allowed_next_statuses(Status.MITIGATED) == [
        Status.INVESTIGATING,
        Status.RESOLVED,
        Status.CLOSED,
    ]


def test_closed_is_final_for_members_but_admins_can_reopen(session: Session):
    incident = make_incident(session, Status.CLOSED)
    with pytest.raises(PermissionDenied, match="only an incident admin can reopen it"):
        incidents.change_status(session, incident.id, "investigating", ALICE)
    with pytest.raises(TransitionNotAllowed, match="final"):
        incidents.change_status(session, incident.id, "resolved", ALICE, resolution=FIXED)
    incidents.change_status(session, incident.id, "reopen", ADMIN, now=T0 + timedelta(days=1))
    assert incident.status == Status.INVESTIGATING
    assert incident.closed_at is None
    assert incident.resolved_at is None


def test_milestones_are_stamped_once_and_on_skips(session: Session):
    incident = make_incident(session)
    t_resolved = T0 + timedelta(minutes=42)
    incidents.change_status(
        session, incident.id, "resolved", ALICE, now=t_resolved, resolution=FIXED
    )
    # A quick fix skips steps: each skipped milestone is reached at that moment.
    assert incident.acknowledged_at == t_resolved
    assert incident.mitigated_at == t_resolved
    assert incident.resolved_at == t_resolved
    assert incident.closed_at is None

    t_reopen = T0 + timedelta(hours=2)
    incidents.change_status(session, incident.id, "investigating", ALICE, now=t_reopen)
    assert incident.resolved_at is None, "reopen clears resolved_at"
    assert incident.acknowledged_at == t_resolved, "acknowledged is stamped once"
    assert incident.mitigated_at == t_resolved

    t_resolved_again = T0 + timedelta(hours=3)
    incidents.change_status(
        session, incident.id, "resolved", ALICE, now=t_resolved_again, resolution=FIXED
    )
    assert incident.resolved_at == t_resolved_again
    assert incident.mitigated_at == t_resolved, "mitigated is stamped once"


def test_regression_to_investigating_keeps_first_mitigation(session: Session):
    incident = make_incident(session, Status.MITIGATED)
    first_mitigation = incident.mitigated_at
    incidents.change_status(
        session, incident.id, "investigating", ALICE, now=T0 + timedelta(hours=1)
    )
    incidents.change_status(session, incident.id, "mitigated", ALICE, now=T0 + timedelta(hours=2))
    assert incident.mitigated_at == first_mitigation
    assert incident.acknowledged_at == T0 + timedelta(minutes=1)


def test_status_change_records_event_note_cause_and_resolution(session: Session):
    incident = make_incident(session, Status.MITIGATED)
    incidents.change_status(
        session,
        incident.id,
        "fixed",
        ALICE,
        note="  Rolled back 🚀 ",
        cause="Bad config",
        resolution="Reverted",
        now=T0 + timedelta(hours=1),
    )
    event = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id)
        .order_by(IncidentEvent.id.desc())
    ).first()
    assert event.kind == EventKind.STATUS_CHANGED
    assert (event.from_value, event.to_value) == ("mitigated", "resolved")
    assert event.text == "Rolled back 🚀"
    assert event.actor == ALICE.user_id
    assert event.occurred_at == T0 + timedelta(hours=1)
    assert event.details == {"cause": "Bad config", "resolution": "Reverted"}
    assert (incident.cause, incident.resolution) == ("Bad config", "Reverted")
    assert incident.updated_at == T0 + timedelta(hours=1)


def test_expected_status_refuses_a_change_that_no_longer_applies(session: Session):
    incident = make_incident(session, Status.RESOLVED)
    before = snapshot(session, incident)
    with pytest.raises(Conflict, match="it is now resolved, not investigating"):
        incidents.change_status(
            session, incident.id, "mitigated", ALICE, expected_status=Status.INVESTIGATING
        )
    assert snapshot(session, incident) == before
    incidents.change_status(
        session, incident.id, "closed", ALICE, expected_status=Status.RESOLVED, resolution=FIXED
    )
    assert incident.status == Status.CLOSED


def test_refused_change_queues_nothing_for_slack(session: Session):
    incident = make_incident(session, Status.OPEN, slack_channel_id="C0INCIDENTS")
    queued = session.scalar(select(func.count()).select_from(Delivery))
    with pytest.raises(TransitionNotAllowed):
        incidents.change_status(session, incident.id, "open", ALICE)
    with pytest.raises(InvalidInput):
        incidents.change_status(
            session, incident.id, "resolved", ALICE, note="x" * 3001, resolution=FIXED
        )
    assert session.scalar(select(func.count()).select_from(Delivery)) == queued
    assert incident.status == Status.OPEN


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("open", Status.OPEN),
        ("OPEN", Status.OPEN),
        ("new", Status.OPEN),
        ("ack", Status.INVESTIGATING),
        ("in_progress", Status.INVESTIGATING),
        ("in progress", Status.INVESTIGATING),
        ("In-Progress", Status.INVESTIGATING),
        ("Investigating", Status.INVESTIGATING),
        ("MITIGATED", Status.MITIGATED),
        ("monitoring", Status.MITIGATED),
        ("RESOLVED", Status.RESOLVED),
        ("fixed", Status.RESOLVED),
        (" done ", Status.RESOLVED),
        ("closed", Status.CLOSED),
        ("reopen", Status.INVESTIGATING),
    ],
)
def test_status_aliases(alias: str, expected: Status):
    assert incidents.parse_status(alias) == expected


@pytest.mark.parametrize("bad", ["", "   ", "finished", "resolvedd", "in progress!"])
def test_unknown_status_lists_the_valid_ones(bad: str):
    with pytest.raises(InvalidInput) as error:
        incidents.parse_status(bad)
    assert str(error.value).endswith(
        "Use one of: open, investigating, mitigated, resolved, closed."
    )
    assert error.value.field == "status"


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("SEV1", Severity.SEV1),
        ("sev1", Severity.SEV1),
        ("Sev-1", Severity.SEV1),
        ("1", Severity.SEV1),
        ("P1", Severity.SEV1),
        ("critical", Severity.SEV1),
        ("CRITICAL", Severity.SEV1),
        ("sev2", Severity.SEV2),
        ("2", Severity.SEV2),
        ("p2", Severity.SEV2),
        ("high", Severity.SEV2),
        ("SEV3", Severity.SEV3),
        ("medium", Severity.SEV3),
        ("P3", Severity.SEV3),
        ("4", Severity.SEV4),
        ("low", Severity.SEV4),
        (" sev4 ", Severity.SEV4),
    ],
)
def test_severity_aliases(alias: str, expected: Severity):
    assert incidents.parse_severity(alias) == expected


@pytest.mark.parametrize("bad", ["", "sev5", "0", "P0", "urgent", "5"])
def test_unknown_severity_lists_the_valid_ones(bad: str):
    with pytest.raises(InvalidInput) as error:
        incidents.parse_severity(bad)
    assert str(error.value).endswith(
        "Use one of: SEV1 (critical), SEV2 (high), SEV3 (medium), SEV4 (low)."
    )


@pytest.mark.parametrize(
    ("text", "number"),
    [("INC-12", 12), ("inc-12", 12), ("#12", 12), ("12", 12), (" INC12 ", 12), ("inc-007", 7)],
)
def test_incident_id_forms(text: str, number: int):
    assert incidents.parse_incident_id(text) == number


@pytest.mark.parametrize("bad", ["", "INC-", "abc", "INC-0", "12a", "-3", "INC-1234567890"])
def test_bad_incident_ids(bad: str):
    with pytest.raises(InvalidInput, match=r"is not an incident id\. Use INC-12, #12 or 12\."):
        incidents.parse_incident_id(bad)

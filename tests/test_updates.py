"""incidents.update: several fields at once (the API's PATCH), each through its own change."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, InvalidInput, PermissionDenied
from db.models import EventKind, IncidentEvent, Severity, Status
from tests.steps import FIXED
from tests.test_changes import ADMIN, ALICE, T0, declare

TOKEN = Actor.token("alertmanager", is_admin=False)


def kinds(session: Session, incident_id: int) -> list[tuple[EventKind, str | None]]:
    events = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.id)
    )
    return [(e.kind, e.field) for e in events]


def test_each_field_goes_through_its_own_change(session: Session):
    incident = declare(session)
    changes = {"title": "Checkout down", "severity": "sev1", "owner": "U0BOB", "cause": "DNS"}
    incidents.update(session, incident.id, TOKEN, changes, now=T0)
    assert (incident.title, incident.severity, incident.owner) == (
        "Checkout down",
        Severity.SEV1,
        "U0BOB",
    )
    assert incident.cause == "DNS"
    recorded = kinds(session, incident.id)[1:]
    assert (EventKind.SEVERITY_CHANGED, "severity") in recorded
    assert (EventKind.ASSIGNED, "owner") in recorded
    assert {field for _, field in recorded} >= {"title", "cause", "severity", "owner"}


def test_a_field_given_its_current_value_is_left_alone(session: Session):
    incident = declare(session, severity="SEV2", owner="U0BOB")
    before = kinds(session, incident.id)
    incidents.update(session, incident.id, ALICE, {"severity": "SEV2", "owner": "U0BOB"}, now=T0)
    assert kinds(session, incident.id) == before


@pytest.mark.parametrize("changes", [{}, {"status": "closed"}, {"reporter": "U0X"}])
def test_nothing_or_an_unknown_field_is_refused(session: Session, changes: dict[str, str]):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="Give at least one of"):
        incidents.update(session, incident.id, ALICE, changes, now=T0)


def test_a_closed_incident_is_for_admins(session: Session):
    incident = declare(session)
    incidents.change_status(session, incident.id, Status.CLOSED, ADMIN, now=T0, resolution=FIXED)
    with pytest.raises(PermissionDenied):
        incidents.update(session, incident.id, ALICE, {"severity": "SEV1"}, now=T0)
    incidents.update(session, incident.id, ADMIN, {"severity": "SEV1"}, now=T0)
    assert incident.severity == Severity.SEV1


def test_a_bad_value_is_the_domain_s_sentence(session: Session):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="Unknown severity"):
        incidents.update(session, incident.id, ALICE, {"severity": "SEV9"}, now=T0)
    with pytest.raises(InvalidInput, match="Owner must be a person"):
        incidents.update(session, incident.id, ALICE, {"owner": "<!channel>"}, now=T0)

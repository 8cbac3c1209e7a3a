"""Subscribers in the domain: who is subscribed (the reporter by default when a person), and the
DMs a status change or a structured update queues for them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import LOCAL_ADMIN, SYSTEM, Actor, IncidentDraft, InvalidInput, NotFound
from db.models import Delivery, DeliveryAction, EventKind, Incident, IncidentEvent
from tests.steps import resolution

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=5)
ALICE = Actor("U0ALICE")
BOB = Actor("U0BOB")
CAROL = "U0CAROL"
DAVE = "W0DAVE"  # an Enterprise Grid user id is a person too


def declare(session: Session, actor: Actor = ALICE, **fields: object) -> Incident:
    draft = {"title": "Checkout is failing", "severity": "SEV2", **fields}
    incident = incidents.declare(session, IncidentDraft(**draft), actor, now=T0)
    session.commit()
    return incident


def dms(session: Session, incident_id: int, after: int = 0) -> list[tuple[str, str]]:
    rows = session.scalars(
        select(Delivery)
        .where(
            Delivery.incident_id == incident_id,
            Delivery.action == DeliveryAction.TELL_USER,
            Delivery.id > after,
        )
        .order_by(Delivery.id)
    )
    return [(row.payload["user"], row.payload["about"]) for row in rows]


def last_row_id(session: Session) -> int:
    return session.scalar(select(Delivery.id).order_by(Delivery.id.desc()).limit(1)) or 0


def move(session: Session, incident: Incident, status: str, actor: Actor = BOB) -> None:
    incidents.change_status(
        session, incident.id, status, actor, resolution=resolution(status), now=LATER
    )
    session.commit()


# --- who is subscribed -------------------------------------------------------------------------


def test_the_reporter_is_subscribed_when_a_person(session: Session):
    incident = declare(session)
    assert incidents.subscribers(session, incident.id) == ["U0ALICE"]
    assert incidents.is_subscribed(session, incident.id, "U0ALICE")
    assert incidents.subscriptions(session, "U0ALICE") == [incident.id]


@pytest.mark.parametrize("reporter", [Actor.token("alertmanager", is_admin=False), LOCAL_ADMIN])
def test_a_token_or_the_local_admin_reporting_is_not_subscribed(session: Session, reporter):
    incident = declare(session, reporter)
    assert incidents.subscribers(session, incident.id) == []


def test_a_draft_may_leave_the_reporter_unsubscribed(session: Session):
    incident = declare(session, tell_people=False)
    assert incidents.subscribers(session, incident.id) == []


def test_a_lead_named_at_declaration_is_dmed_the_leads_duties(session: Session):
    draft = incidents.IncidentDraft(title="Checkout is failing", severity="SEV1", owner="U0BOB")
    incident = incidents.declare(session, draft, Actor("U0ALICE"))
    rows = session.scalars(
        select(Delivery).where(
            Delivery.incident_id == incident.id, Delivery.action == DeliveryAction.TELL_USER
        )
    ).all()
    assert [(r.payload["user"], r.payload["about"]) for r in rows] == [("U0BOB", "role")]
    # A declarer who leads it knows already.
    own = incidents.IncidentDraft(title="Search is slow", severity="SEV2", owner="U0ALICE")
    mine = incidents.declare(session, own, Actor("U0ALICE"))
    assert not session.scalars(
        select(Delivery).where(
            Delivery.incident_id == mine.id, Delivery.action == DeliveryAction.TELL_USER
        )
    ).all()
    # Demo data tells no one.
    quiet = incidents.IncidentDraft(
        title="Old outage", severity="SEV1", owner="U0BOB", tell_people=False
    )
    seeded = incidents.declare(session, quiet, Actor("U0ALICE"))
    assert not session.scalars(
        select(Delivery).where(
            Delivery.incident_id == seeded.id, Delivery.action == DeliveryAction.TELL_USER
        )
    ).all()


def test_an_alert_is_not_subscribed(session: Session):
    alert = incidents.IntakeAlert(title="CPU on fire", severity="SEV2", fingerprint="abc")
    result = incidents.intake(session, alert, Actor.token("alertmanager", is_admin=False))
    assert incidents.subscribers(session, result.incident.id) == []


def test_subscribe_is_idempotent_and_keeps_the_order_people_came_in(session: Session):
    incident = declare(session)
    assert incidents.subscribe(session, incident.id, CAROL, now=LATER) is True
    assert incidents.subscribe(
        session, f"INC-{incident.id}", DAVE, now=LATER + timedelta(seconds=1)
    )
    assert incidents.subscribe(session, incident.id, CAROL, now=LATER) is False
    assert incidents.subscribe(session, incident.id, "U0ALICE") is False
    session.commit()
    assert incidents.subscribers(session, incident.id) == ["U0ALICE", CAROL, DAVE]


def test_unsubscribe_and_unsubscribe_again(session: Session):
    incident = declare(session)
    assert incidents.unsubscribe(session, incident.id, "U0ALICE") is True
    assert incidents.unsubscribe(session, incident.id, "U0ALICE") is False
    assert incidents.subscribers(session, incident.id) == []
    assert not incidents.is_subscribed(session, incident.id, "U0ALICE")


@pytest.mark.parametrize("who", ["", "  ", "<!channel>", "C0CHANNEL", "token:ci", "bob"])
def test_only_a_person_subscribes(session: Session, who: str):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="Only a person can subscribe") as error:
        incidents.subscribe(session, incident.id, who)
    assert error.value.field == "user"
    with pytest.raises(InvalidInput, match="Only a person"):
        incidents.unsubscribe(session, incident.id, who)
    assert incidents.subscribers(session, incident.id) == ["U0ALICE"]


def test_subscribing_to_a_missing_incident_is_not_found(session: Session):
    with pytest.raises(NotFound, match="no incident INC-999"):
        incidents.subscribe(session, 999, CAROL)
    with pytest.raises(NotFound, match="no incident INC-999"):
        incidents.unsubscribe(session, 999, CAROL)


def test_subscriptions_are_newest_first_and_active_only_unless_asked(session: Session):
    first, second, third = (declare(session, title=f"Checkout {n}") for n in range(3))
    for incident in (first, second, third):
        incidents.subscribe(session, incident.id, CAROL, now=LATER)
    move(session, second, "resolved")
    assert incidents.subscriptions(session, CAROL) == [third.id, first.id]
    assert incidents.subscriptions(session, CAROL, active_only=False) == [
        third.id,
        second.id,
        first.id,
    ]
    assert incidents.subscriptions(session, "U0NOBODY") == []


def test_deleting_an_incident_deletes_its_subscriptions(session: Session):
    incident = declare(session)
    incidents.delete_incident(session, incident.id, Actor("U0ADMIN", is_admin=True))
    session.commit()
    assert incidents.subscriptions(session, "U0ALICE", active_only=False) == []


# --- what subscribers are told -----------------------------------------------------------------


def test_a_status_change_dms_every_subscriber_but_whoever_made_it(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    incidents.subscribe(session, incident.id, CAROL, now=T0)
    incidents.subscribe(session, incident.id, "U0BOB", now=T0)
    before = last_row_id(session)
    move(session, incident, "investigating", BOB)
    assert dms(session, incident.id, before) == [("U0ALICE", "subscriber"), (CAROL, "subscriber")]
    [event] = session.scalars(
        select(IncidentEvent).where(
            IncidentEvent.incident_id == incident.id,
            IncidentEvent.kind == EventKind.STATUS_CHANGED,
        )
    )
    [row, _] = session.scalars(
        select(Delivery).where(Delivery.action == DeliveryAction.TELL_USER, Delivery.id > before)
    )
    assert row.payload["event_ids"] == [event.id] and row.event_id == event.id
    assert row.payload["via"] == "dm" and "text" not in row.payload


def test_the_resolution_and_a_close_by_the_system_are_told_too(session: Session):
    incident = declare(session)
    move(session, incident, "resolved", BOB)
    before = last_row_id(session)
    incidents.change_status(
        session, incident.id, "closed", SYSTEM, resolution=resolution("closed"), now=LATER
    )
    session.commit()
    assert dms(session, incident.id, before) == [("U0ALICE", "subscriber")]


def test_subscribers_are_told_without_a_card(session: Session):
    incident = declare(session)  # no card: a web-only incident
    move(session, incident, "investigating", BOB)
    assert dms(session, incident.id) == [("U0ALICE", "subscriber")]


def test_a_subscriber_making_the_change_is_not_told_of_it(session: Session):
    incident = declare(session)
    move(session, incident, "investigating", ALICE)
    assert dms(session, incident.id) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda s, i: incidents.change_severity(s, i, "SEV1", BOB),
        lambda s, i: incidents.edit(s, i, BOB, {"service": "payments"}),
        lambda s, i: incidents.add_note(s, i, BOB, "looking at the logs"),
        lambda s, i: incidents.assign(s, i, BOB, assignee="U0DAVE"),
    ],
    ids=["severity", "edit", "note", "assign"],
)
def test_other_changes_are_not_dmed_to_subscribers(session: Session, change):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    change(session, incident.id)
    session.commit()
    assert dms(session, incident.id) == []


def test_an_unsubscribed_person_is_told_nothing_more(session: Session):
    incident = declare(session)
    incidents.unsubscribe(session, incident.id, "U0ALICE")
    move(session, incident, "investigating", BOB)
    assert dms(session, incident.id) == []

"""Structured updates in the domain: what an update records and refuses, the status move it
shares with change_status, the promised next update, and the nudges when it is late.

Real PostgreSQL, no Slack: the outbox rows are what the tests read of what Slack will be told.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import (
    ChannelRules,
    Conflict,
    IncidentDraft,
    InvalidInput,
    PermissionDenied,
    TransitionNotAllowed,
    UpdateDraft,
)
from bot.incidents.vocabulary import Actor
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    Status,
)
from tests.steps import FIXED

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("U0ALICE0001")
BOB = Actor("U0BOB00001")
ADMIN = Actor("U0ADMIN001", is_admin=True)
CHANNEL = "C0INCIDENTS"
MINUTE = timedelta(minutes=1)
INTERVALS = (timedelta(minutes=15), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=4))


def declare(session: Session, *, channel: str | None = CHANNEL, **fields: Any) -> Incident:
    fields = {"title": "Checkout is failing", "severity": "SEV2", **fields}
    draft = IncidentDraft(slack_channel_id=channel, **fields)
    return incidents.declare(session, draft, ALICE, now=T0)


def post(
    session: Session,
    incident: Incident,
    summary: str | None = "Payments fail for 20% of users; rolling back.",
    *,
    actor: Actor = ALICE,
    at: datetime = T0 + MINUTE,
    expected_status: Status | None = None,
    **fields: Any,
) -> IncidentEvent:
    draft = UpdateDraft(summary=summary, **fields)  # type: ignore[arg-type]
    return incidents.post_update(
        session, incident.id, draft, actor, now=at, expected_status=expected_status
    )


def events_of(session: Session, incident_id: int) -> list[IncidentEvent]:
    return list(
        session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
    )


def actions_after(session: Session, incident_id: int, after: int) -> list[DeliveryAction]:
    return list(
        session.scalars(
            select(Delivery.action)
            .where(Delivery.incident_id == incident_id, Delivery.id > after)
            .order_by(Delivery.id)
        )
    )


def last_delivery(session: Session) -> int:
    return session.scalar(select(func.coalesce(func.max(Delivery.id), 0)))


def snapshot(session: Session, incident_id: int) -> tuple[Any, ...]:
    session.expire_all()
    incident = session.get_one(Incident, incident_id)
    return (
        incident.status,
        incident.resolution,
        incident.cause,
        incident.resolved_at,
        incident.updated_at,
        incident.next_update_at,
        incident.update_nudge_at,
        len(events_of(session, incident_id)),
        last_delivery(session),
    )


# --- post_update: what one update records --------------------------------------------------------


def test_an_update_is_one_event_with_its_summary_impact_and_promise(session: Session):
    incident = declare(session)
    at = T0 + 5 * MINUTE
    event = post(
        session,
        incident,
        "  Payments fail for 20% of users.  ",
        impact="Checkout errors for EU customers 💳",
        next_update_in=timedelta(minutes=30),
        at=at,
    )
    assert (event.kind, event.actor, event.text) == (
        EventKind.STATUS_UPDATE,
        ALICE.user_id,
        "Payments fail for 20% of users.",
    )
    assert (event.field, event.from_value, event.to_value) == (None, None, None)
    assert event.details == {
        "impact": "Checkout errors for EU customers 💳",
        "next_update_in": 1800,
        "next_update_at": (at + timedelta(minutes=30)).isoformat(),
    }
    assert incident.next_update_at == incident.update_nudge_at == at + timedelta(minutes=30)
    assert incident.updated_at == at
    assert incident.status == Status.OPEN
    assert incidents.latest_update(session, incident.id) == event


def test_an_update_that_moves_the_status_is_one_event_not_two(session: Session):
    incident = declare(session)
    at = T0 + 5 * MINUTE
    event = post(session, incident, "Found it: a bad deploy.", status="investigating", at=at)
    assert (event.kind, event.field, event.from_value, event.to_value) == (
        EventKind.STATUS_UPDATE,
        "status",
        "open",
        "investigating",
    )
    assert [e.kind for e in events_of(session, incident.id)] == [
        EventKind.CREATED,
        EventKind.STATUS_UPDATE,
    ]
    assert incident.status == Status.INVESTIGATING
    assert incident.acknowledged_at == at  # the milestone change_status would stamp


@pytest.mark.parametrize("same", [None, "", "  ", "open", Status.OPEN])
def test_no_status_or_the_current_one_moves_nothing(session: Session, same: Any):
    incident = declare(session)
    event = post(session, incident, status=same)
    assert event.field is None
    assert incident.status == Status.OPEN
    assert incident.acknowledged_at is None


def test_the_latest_update_is_the_last_one_of_its_incident(session: Session):
    first, other = declare(session), declare(session)
    assert incidents.latest_update(session, first.id) is None
    post(session, first, "First look.", at=T0 + MINUTE)
    second = post(session, first, "Rolled back.", at=T0 + 2 * MINUTE)
    incidents.add_note(session, first.id, ALICE, "A note is not an update", now=T0 + 3 * MINUTE)
    assert incidents.latest_update(session, first.id) == second
    assert incidents.latest_update(session, other.id) is None


def test_an_update_edits_the_card_and_replies_in_the_thread(session: Session):
    incident = declare(session)
    before = last_delivery(session)
    event = post(session, incident)
    assert actions_after(session, incident.id, before) == [
        DeliveryAction.UPDATE_CARD,
        DeliveryAction.POST_THREAD,
    ]
    thread = session.scalars(
        select(Delivery).where(Delivery.action == DeliveryAction.POST_THREAD, Delivery.id > before)
    ).one()
    assert thread.payload == {"event_ids": [event.id]}


def test_with_its_own_channel_an_update_is_posted_there_and_the_summary_edited(session: Session):
    incident = incidents.declare(
        session,
        IncidentDraft(title="Checkout down", severity="SEV1", slack_channel_id=CHANNEL),
        ALICE,
        now=T0,
        channels=ChannelRules(),
    )
    assert incident.wants_own_channel
    before = last_delivery(session)
    post(session, incident, status="mitigated")
    assert actions_after(session, incident.id, before) == [
        DeliveryAction.UPDATE_CARD,
        DeliveryAction.UPDATE_CHANNEL,
        DeliveryAction.POST_THREAD,
        DeliveryAction.POST_CHANNEL,
    ]


def test_without_a_card_an_update_queues_nothing(session: Session):
    incident = declare(session, channel=None)
    post(session, incident, status="investigating")
    assert actions_after(session, incident.id, 0) == []


# --- post_update: what it refuses, changing nothing ----------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"summary": None}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"summary": "x" * 3_001}, "summary"),
        ({"summary": "a\x00b"}, "summary"),
        ({"impact": "x" * 1_001}, "impact"),
        ({"status": "on fire"}, "status"),
        ({"next_update_in": timedelta(minutes=20)}, "next_update"),
        ({"next_update_in": timedelta(0)}, "next_update"),
        ({"status": "resolved", "cause": "x" * 10_001, "resolution": FIXED}, "cause"),
        ({"status": "resolved"}, "resolution"),
        ({"status": "resolved", "resolution": "  "}, "resolution"),
        ({"status": "closed"}, "resolution"),
    ],
)
def test_bad_input_is_refused_by_field_and_changes_nothing(
    session: Session, fields: dict[str, Any], field: str
):
    incident = declare(session)
    before = snapshot(session, incident.id)
    draft: dict[str, Any] = {"summary": "Rolling back.", **fields}
    with pytest.raises(InvalidInput) as refused:
        incidents.post_update(session, incident.id, UpdateDraft(**draft), ALICE, now=T0 + MINUTE)
    assert refused.value.field == field
    assert snapshot(session, incident.id) == before


def test_the_limits_are_inclusive(session: Session):
    incident = declare(session)
    event = post(session, incident, "🔥" * 3_000, impact="x" * 1_000)
    assert len(event.text) == 3_000


def test_the_interval_must_be_one_offered_and_the_message_lists_them(session: Session):
    incident = declare(session)
    with pytest.raises(InvalidInput, match=r"in 15 min, 30 min, 1 h, 4 h, or none; not in 20 min"):
        post(session, incident, next_update_in=timedelta(minutes=20))
    five = timedelta(seconds=5)
    event = incidents.post_update(
        session,
        incident.id,
        UpdateDraft("Tests promise seconds.", next_update_in=five),
        ALICE,
        intervals=(five,),
        now=T0,
    )
    assert event.details["next_update_in"] == 5


def test_a_move_the_table_forbids_is_refused(session: Session):
    incident = declare(session)
    post(session, incident, status="resolved", resolution=FIXED)
    before = snapshot(session, incident.id)
    with pytest.raises(TransitionNotAllowed, match="can't go from resolved to mitigated"):
        post(session, incident, status="mitigated")
    assert snapshot(session, incident.id) == before


def test_a_stale_form_is_refused(session: Session):
    incident = declare(session)
    incidents.change_status(session, incident.id, "mitigated", BOB, now=T0 + MINUTE)
    before = snapshot(session, incident.id)
    for status in (None, "resolved"):
        with pytest.raises(Conflict, match="changed while you were looking"):
            incidents.post_update(
                session,
                incident.id,
                UpdateDraft("Investigating.", status=status, resolution=FIXED),
                ALICE,
                expected_status=Status.OPEN,
            )
        assert snapshot(session, incident.id) == before
    post(session, incident, expected_status=Status.MITIGATED)


def test_resolving_stores_the_resolution_and_cause_and_stamps_the_milestones(session: Session):
    incident = declare(session)
    at = T0 + 30 * MINUTE
    event = post(
        session,
        incident,
        "Fixed.",
        status="resolved",
        resolution=FIXED,
        cause="A bad deploy",
        next_update_in=timedelta(minutes=30),
        at=at,
    )
    assert (incident.status, incident.resolution, incident.cause) == (
        Status.RESOLVED,
        FIXED,
        "A bad deploy",
    )
    assert incident.acknowledged_at == incident.mitigated_at == incident.resolved_at == at
    assert event.details == {
        "impact": None,
        "next_update_in": None,
        "next_update_at": None,
        "cause": "A bad deploy",
        "resolution": FIXED,
    }
    # A finished incident promises no next update.
    assert incident.next_update_at is None and incident.update_nudge_at is None


def test_a_closed_incident_takes_updates_from_admins_only(session: Session):
    incident = declare(session)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED, now=T0)
    before = snapshot(session, incident.id)
    with pytest.raises(PermissionDenied, match="is closed; only an incident admin"):
        post(session, incident, "After the fact.")
    with pytest.raises(PermissionDenied, match="only an incident admin can reopen it"):
        post(session, incident, "Back again.", status="investigating")
    assert snapshot(session, incident.id) == before
    post(session, incident, "Review done.", actor=ADMIN)
    assert incident.status == Status.CLOSED
    reopened = post(session, incident, "It is back.", actor=ADMIN, status="investigating")
    assert (reopened.from_value, reopened.to_value) == ("closed", "investigating")
    assert incident.resolved_at is None and incident.closed_at is None


def test_closing_by_update_obeys_the_close_rules(session: Session):
    """A close past resolved needs a resolution, as change_status's; from resolved it needs
    nothing new."""
    active, resolved = declare(session), declare(session)
    with pytest.raises(InvalidInput, match="a resolution is needed to close it"):
        post(session, active, status="closed")
    post(session, active, status="closed", resolution=FIXED)
    assert active.closed_at == active.resolved_at == T0 + MINUTE
    incidents.change_status(session, resolved.id, "resolved", ALICE, resolution=FIXED, now=T0)
    post(session, resolved, "Closing.", actor=BOB, status="closed")
    assert resolved.status == Status.CLOSED


# --- the promise ----------------------------------------------------------------------------------


def test_none_withdraws_the_promise_and_other_changes_leave_it(session: Session):
    incident = declare(session)
    post(session, incident, next_update_in=timedelta(hours=1), at=T0)
    due = T0 + timedelta(hours=1)
    incidents.add_note(session, incident.id, BOB, "Looking", now=T0 + MINUTE)
    incidents.change_severity(session, incident.id, "SEV1", BOB, now=T0 + 2 * MINUTE)
    incidents.change_status(session, incident.id, "investigating", BOB, now=T0 + 3 * MINUTE)
    incidents.edit(session, incident.id, BOB, {"service": "payments"}, now=T0 + 4 * MINUTE)
    incidents.assign(session, incident.id, BOB, owner=BOB.user_id, now=T0 + 5 * MINUTE)
    assert incident.next_update_at == incident.update_nudge_at == due
    post(session, incident, "Still rolling back.", at=T0 + 10 * MINUTE)
    assert incident.next_update_at is None and incident.update_nudge_at is None


@pytest.mark.parametrize("final", ["resolved", "closed"])
def test_leaving_the_active_statuses_ends_the_promise(session: Session, final: str):
    incident = declare(session)
    post(session, incident, next_update_in=timedelta(minutes=15), at=T0)
    incidents.change_status(session, incident.id, final, BOB, resolution=FIXED, now=T0 + MINUTE)
    assert incident.next_update_at is None and incident.update_nudge_at is None

"""Structured updates in the domain: what an update records and refuses, the status move it
shares with change_status, the promised next update, and the nudges when it is late.

Real PostgreSQL, no Slack: the outbox rows are what the tests read of what Slack will be told.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

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
from bot.scheduler import Jobs
from bot.settings import Settings
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentRole,
    Status,
)
from tests.steps import FIXED
from tests.steps import resolution as needed

T0 = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("U0ALICE0001")
BOB = Actor("U0BOB00001")
ADMIN = Actor("U0ADMIN001", is_admin=True)
CHANNEL = "C0INCIDENTS"
MINUTE = timedelta(minutes=1)
PARIS = ZoneInfo("Europe/Paris")
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


@pytest.mark.parametrize("start", list(Status))
def test_a_move_by_update_is_allowed_or_refused_exactly_as_by_change_status(
    session: Session, start: Status
):
    """The one move both share: every target, by a person and an admin, with and without a
    resolution, ends the same (the same status, or the same refusal in the same words)."""
    incident = declare(session, channel=None)
    path = {
        Status.INVESTIGATING: ["investigating"],
        Status.MITIGATED: ["mitigated"],
        Status.RESOLVED: ["resolved"],
        Status.CLOSED: ["closed"],
    }.get(start, [])
    for status in path:
        incidents.change_status(session, incident.id, status, ADMIN, resolution=needed(status))
    if start in (Status.OPEN, Status.INVESTIGATING, Status.MITIGATED):
        assert incident.resolution is None

    def outcome(change: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        savepoint = session.begin_nested()
        try:
            change(session, incident.id, *args, now=T0, **kwargs)
            return ("moved", incident.status, incident.resolution, incident.resolved_at)
        except incidents.IncidentError as error:
            return (type(error), str(error), getattr(error, "field", None))
        finally:
            savepoint.rollback()
            session.expire_all()

    for target in [s for s in Status if s != start]:
        for actor in (ALICE, ADMIN):
            for fix in (None, FIXED):
                draft = UpdateDraft("Update.", status=target, resolution=fix)
                assert outcome(incidents.post_update, draft, actor) == outcome(
                    incidents.change_status, target, actor, resolution=fix
                ), (start, target, actor, fix)


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


def test_reopening_by_update_opens_a_new_channel_when_the_old_one_is_archived(session: Session):
    incident = incidents.declare(
        session,
        IncidentDraft(title="DB down", severity="SEV1", slack_channel_id=CHANNEL),
        ALICE,
        now=T0,
        channels=ChannelRules(),
    )
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED, now=T0)
    incident.own_channel_id, incident.own_channel_archived_at = "C0ARCHIVED1", T0 + MINUTE
    before = last_delivery(session)
    at = T0 + timedelta(days=2)
    post(
        session,
        incident,
        "It is back.",
        actor=ADMIN,
        status="investigating",
        next_update_in=timedelta(minutes=15),
        at=at,
    )
    opened = session.scalars(
        select(Delivery).where(Delivery.id > before, Delivery.action == DeliveryAction.OPEN_CHANNEL)
    ).one()
    assert opened.payload["name"] == f"inc-{incident.id}-db-down-2"
    assert incident.own_channel_archived_at is None
    # Active again, it keeps the promise this update made.
    assert incident.next_update_at == at + timedelta(minutes=15)


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


# --- the sweeps: reminders give way to the promise, nudges keep it --------------------------------

Sessions = sessionmaker[Session]
LEAD = "U0LEAD00001"
COMMS = "U0COMMS0001"
SEV1_CADENCE = timedelta(minutes=15)


class Drains:
    """Stands in for the delivery worker: these tests read the outbox rows a sweep leaves (the
    DMs are worded by the surface when they are sent; tests/test_scheduler_jobs.py drives the
    real deliverer against the fake Slack). It records which incidents a sweep drained."""

    def __init__(self) -> None:
        self.drained: list[int | None] = []

    def drain(self, *, incident_id: int | None = None, now: datetime | None = None) -> None:
        self.drained.append(incident_id)


def sweeps(sessions: Sessions, **settings: Any) -> Jobs:
    return Jobs(replace(Settings.from_env({}), **settings), sessions, Drains())  # type: ignore[arg-type]


def declared(sessions: Sessions, severity: str = "SEV1", **fields: Any) -> int:
    with sessions.begin() as session:
        return declare(session, severity=severity, **fields).id


def promise(
    sessions: Sessions, incident_id: int, every: timedelta | None, at: datetime, **fields: Any
) -> None:
    with sessions.begin() as session:
        draft = UpdateDraft("Rolling back the deploy.", next_update_in=every, **fields)
        incidents.post_update(session, incident_id, draft, ALICE, now=at)


def give_comms(sessions: Sessions, incident_id: int, user_id: str) -> None:
    with sessions.begin() as session:
        session.add(
            IncidentRole(
                incident_id=incident_id,
                role="comms",
                user_id=user_id,
                assigned_by=ALICE.user_id,
                assigned_at=T0,
            )
        )


def of_kind(sessions: Sessions, incident_id: int, kind: EventKind) -> list[IncidentEvent]:
    with sessions() as session:
        return [e for e in events_of(session, incident_id) if e.kind == kind]


def nudge_dms(sessions: Sessions, incident_id: int) -> list[tuple[str, list[int]]]:
    with sessions() as session:
        rows = session.scalars(
            select(Delivery)
            .where(Delivery.incident_id == incident_id, Delivery.action == DeliveryAction.TELL_USER)
            .order_by(Delivery.id)
        )
        return [
            (row.payload["user"], row.payload["event_ids"])
            for row in rows
            if row.payload.get("about") == "nudge"
        ]


def stored(sessions: Sessions, incident_id: int) -> Incident:
    with sessions() as session:
        return session.get_one(Incident, incident_id)


def test_a_promised_update_replaces_the_reminders_and_none_brings_them_back(
    committing_sessions: Sessions,
):
    sessions = committing_sessions
    jobs = sweeps(sessions)
    promised, plain = declared(sessions), declared(sessions)
    promise(sessions, promised, timedelta(hours=1), T0)
    promise(sessions, plain, None, T0)
    assert jobs.remind(T0 + MINUTE) == 0  # due times derived for the plain one
    assert jobs.remind(T0 + SEV1_CADENCE) == 1
    assert len(of_kind(sessions, plain, EventKind.REMINDER)) == 1
    assert of_kind(sessions, promised, EventKind.REMINDER) == []
    assert stored(sessions, promised).next_reminder_at is None
    assert jobs.remind(T0 + 50 * MINUTE) == 1, "the plain one again, the promised one never"
    assert of_kind(sessions, promised, EventKind.REMINDER) == []

    # "none": the severity's cadence counts again from this update.
    at = T0 + 55 * MINUTE
    promise(sessions, promised, None, at)
    jobs.remind(at + SEV1_CADENCE - timedelta(seconds=1))
    assert of_kind(sessions, promised, EventKind.REMINDER) == []
    jobs.remind(at + SEV1_CADENCE)
    assert len(of_kind(sessions, promised, EventKind.REMINDER)) == 1


def test_a_snoozed_reminder_of_a_promised_incident_does_not_go_out(committing_sessions: Sessions):
    sessions = committing_sessions
    jobs = sweeps(sessions)
    incident_id = declared(sessions)
    promise(sessions, incident_id, timedelta(hours=4), T0)
    with sessions.begin() as session:
        incidents.snooze_reminders(session, incident_id, BOB, timedelta(minutes=10), now=T0)
    assert jobs.remind(T0 + timedelta(minutes=30)) == 0
    assert of_kind(sessions, incident_id, EventKind.REMINDER) == []


def test_a_late_update_nudges_the_lead_and_comms_once_per_promised_interval(
    committing_sessions: Sessions,
):
    sessions = committing_sessions
    jobs = sweeps(sessions)
    incident_id = declared(sessions, owner=LEAD)
    give_comms(sessions, incident_id, COMMS)
    every = timedelta(minutes=30)
    promise(sessions, incident_id, every, T0)
    due = T0 + every

    assert jobs.nudge_updates(due - timedelta(seconds=1)) == 0
    assert jobs.nudge_updates(due) == 1
    [nudge] = of_kind(sessions, incident_id, EventKind.UPDATE_OVERDUE)
    assert (nudge.actor, nudge.details["who"]) == ("system", [LEAD, COMMS])
    assert nudge.details["next_update_at"] == due.isoformat()
    assert nudge_dms(sessions, incident_id) == [(LEAD, [nudge.id]), (COMMS, [nudge.id])]
    assert jobs.deliverer.drained == [incident_id]  # type: ignore[attr-defined]
    row = stored(sessions, incident_id)
    assert row.update_nudge_at == due + every
    assert row.next_update_at == due, "the promise stays late: the card shows it overdue"

    assert [jobs.nudge_updates(due + m * MINUTE) for m in (1, 10, 29)] == [0, 0, 0]
    assert jobs.nudge_updates(due + every) == 1
    assert len(of_kind(sessions, incident_id, EventKind.UPDATE_OVERDUE)) == 2
    assert len(nudge_dms(sessions, incident_id)) == 4

    # The update comes: no more nudges until the new promise is late.
    promise(sessions, incident_id, timedelta(hours=1), due + every + MINUTE)
    assert jobs.nudge_updates(due + 2 * every) == 0
    assert len(of_kind(sessions, incident_id, EventKind.UPDATE_OVERDUE)) == 2


def test_a_nudge_edits_the_card_and_posts_nothing_in_the_thread_or_channel(
    committing_sessions: Sessions,
):
    sessions = committing_sessions
    jobs = sweeps(sessions)
    with sessions.begin() as session:
        incident_id = incidents.declare(
            session,
            IncidentDraft(title="Checkout down", severity="SEV1", slack_channel_id=CHANNEL),
            ALICE,
            now=T0,
            channels=ChannelRules(),
        ).id
    promise(sessions, incident_id, timedelta(minutes=15), T0)
    with sessions() as session:
        before = last_delivery(session)
    assert jobs.nudge_updates(T0 + timedelta(minutes=15)) == 1
    with sessions() as session:
        assert actions_after(session, incident_id, before) == [
            DeliveryAction.UPDATE_CARD,
            DeliveryAction.UPDATE_CHANNEL,
            DeliveryAction.TELL_USER,
        ]


@pytest.mark.parametrize(
    ("owner", "comms", "reporter", "nudged"),
    [
        (LEAD, LEAD, ALICE, [LEAD]),  # one person holding both is nudged once
        (None, COMMS, ALICE, [COMMS]),
        (LEAD, None, ALICE, [LEAD]),
        (None, None, ALICE, [ALICE.user_id]),  # neither: the reporter
        (None, None, Actor.token("alertmanager", is_admin=False), []),  # not a person
    ],
)
def test_who_is_nudged(
    committing_sessions: Sessions,
    owner: str | None,
    comms: str | None,
    reporter: Actor,
    nudged: list[str],
):
    sessions = committing_sessions
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout down", severity="SEV2", owner=owner, slack_channel_id=CHANNEL
        )
        incident_id = incidents.declare(session, draft, reporter, now=T0).id
    if comms:
        give_comms(sessions, incident_id, comms)
    promise(sessions, incident_id, timedelta(minutes=15), T0)
    assert sweeps(sessions).nudge_updates(T0 + timedelta(hours=1)) == 1
    assert [user for user, _ in nudge_dms(sessions, incident_id)] == nudged


@pytest.mark.parametrize("final", ["resolved", "closed"])
def test_a_finished_incident_is_not_nudged(committing_sessions: Sessions, final: str):
    sessions = committing_sessions
    incident_id = declared(sessions, owner=LEAD)
    promise(sessions, incident_id, timedelta(minutes=15), T0)
    with sessions.begin() as session:
        incidents.change_status(session, incident_id, final, BOB, resolution=FIXED, now=T0 + MINUTE)
    assert sweeps(sessions).nudge_updates(T0 + timedelta(hours=1)) == 0
    assert of_kind(sessions, incident_id, EventKind.UPDATE_OVERDUE) == []


def test_quiet_hours_hold_nudges_until_they_end(committing_sessions: Sessions):
    sessions = committing_sessions
    jobs = sweeps(sessions, quiet_hours=(time(22, 0), time(7, 0)), timezone=PARIS)
    evening = datetime(2031, 1, 15, 21, 30, tzinfo=PARIS).astimezone(UTC)
    incident_id = declared(sessions, owner=LEAD)
    promise(sessions, incident_id, timedelta(hours=1), evening)
    night = [evening + timedelta(hours=h) for h in (1, 3, 9)]  # 22:30, 00:30, 06:30 in Paris
    assert [jobs.nudge_updates(now) for now in night] == [0, 0, 0]
    morning = datetime(2031, 1, 16, 7, 0, tzinfo=PARIS).astimezone(UTC)
    assert jobs.nudge_updates(morning) == 1
    assert len(nudge_dms(sessions, incident_id)) == 1, "one nudge, not one per missed interval"
    assert stored(sessions, incident_id).update_nudge_at == morning + timedelta(hours=1)


def test_a_snooze_holds_the_nudges_too_but_never_brings_them_sooner(
    committing_sessions: Sessions,
):
    sessions = committing_sessions
    jobs = sweeps(sessions)
    held, later = declared(sessions, owner=LEAD), declared(sessions, owner=LEAD)
    promise(sessions, held, timedelta(minutes=15), T0)
    promise(sessions, later, timedelta(hours=4), T0)
    with sessions.begin() as session:
        for incident_id in (held, later):
            incidents.snooze_reminders(session, incident_id, BOB, timedelta(hours=1), now=T0)
    assert stored(sessions, held).update_nudge_at == T0 + timedelta(hours=1)
    assert stored(sessions, later).update_nudge_at == T0 + timedelta(hours=4)
    assert jobs.nudge_updates(T0 + timedelta(minutes=59)) == 0
    assert jobs.nudge_updates(T0 + timedelta(hours=1)) == 1
    assert len(nudge_dms(sessions, held)) == 1
    assert nudge_dms(sessions, later) == []


def test_a_snooze_without_a_promise_sets_no_nudge(session: Session):
    incident = declare(session, severity="SEV1")
    incidents.snooze_reminders(session, incident.id, BOB, timedelta(hours=1), now=T0)
    assert incident.update_nudge_at is None and incident.next_update_at is None


def test_the_overdue_count_is_of_active_incidents_past_their_promise(session: Session):
    late, kept, finished = declare(session), declare(session), declare(session)
    now = datetime.now(UTC)
    for incident, at in (
        (late, now - timedelta(hours=1)),
        (kept, now),
        (finished, now - timedelta(hours=1)),
    ):
        post(session, incident, next_update_in=timedelta(minutes=15), at=at)
    incidents.change_status(session, finished.id, "resolved", BOB, resolution=FIXED)
    assert incidents.count_overdue(session) == 1
    assert incidents.is_overdue(late.next_update_at, now)
    assert not incidents.is_overdue(kept.next_update_at, now)
    assert not incidents.is_overdue(None, now)

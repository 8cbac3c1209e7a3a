"""Incident roles in the domain: the lead (the owner) and INCIDENT_ROLES's roles, their rules,
events and outbox rows; "I'll lead"; handoffs; leaderless_since."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import (
    Actor,
    ChannelRules,
    Conflict,
    IncidentDraft,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RoleRules,
)
from bot.incidents.roles import DEFAULT_ROLES, LEAD, Role, parse_roles
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentRole,
    Status,
)
from tests.fakeslack import FakeSlack
from tests.steps import resolution
from tests.test_scheduler_jobs import (
    BASE,
    CHANNEL,
    REPORTER,
    make_jobs,
    row,
    run_together,
    with_card,
)
from tests.test_scheduler_jobs import (
    declare as declare_in,
)
from tests.test_scheduler_jobs import events as events_in

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=3)
ALICE = Actor("U0ALICE")
BOB = Actor("U0BOB")
CAROL = "U0CAROL"
ADMIN = Actor("U0ADMIN", is_admin=True)
RULES = RoleRules()
CARD_CHANNEL = "C0INCIDENTS"


def declare(session: Session, actor: Actor = ALICE, **fields: object) -> Incident:
    draft = {"title": "Checkout is failing", "severity": "SEV1", **fields}
    incident = incidents.declare(session, IncidentDraft(**draft), actor, now=T0)
    session.commit()
    return incident


def with_channel(session: Session, **fields: object) -> Incident:
    """An incident with a card whose own channel is open."""
    incident = declare(session, slack_channel_id=CARD_CHANNEL, **fields)
    incident.wants_own_channel = True
    incident.own_channel_id = "C0OWNCHAN1"
    session.commit()
    return incident


def new_rows(session: Session, incident_id: int, after: int = 0) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.incident_id == incident_id, Delivery.id > after)
            .order_by(Delivery.id)
        )
    )


def last_row_id(session: Session) -> int:
    return session.scalar(select(Delivery.id).order_by(Delivery.id.desc()).limit(1)) or 0


def events_of(session: Session, incident_id: int, kind: EventKind) -> list[IncidentEvent]:
    return list(
        session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.kind == kind)
            .order_by(IncidentEvent.id)
        )
    )


def held(session: Session, incident: Incident) -> dict[str, str | None]:
    return {role.key: user for role, user in incidents.holders(session, incident, RULES)}


def give(session: Session, incident: Incident, role: str, user: str | None, actor=BOB, **kw):
    done = incidents.assign_role(
        session, incident.id, role, user, actor, rules=RULES, now=kw.pop("now", LATER), **kw
    )
    session.commit()
    return done


# --- holders and the rules ---------------------------------------------------------------------


def test_holders_lists_the_lead_first_then_the_configured_roles_nobody_holding_them(
    session: Session,
):
    incident = declare(session)
    assert [(role.key, user) for role, user in incidents.holders(session, incident, RULES)] == [
        ("lead", None),
        ("comms", None),
        ("scribe", None),
    ]


def test_a_role_given_is_held_and_a_role_no_longer_configured_is_listed_last(session: Session):
    incident = declare(session, owner="U0OWNER")
    give(session, incident, "scribe", CAROL)
    give(session, incident, "comms", "U0DAVE")
    assert held(session, incident) == {"lead": "U0OWNER", "comms": "U0DAVE", "scribe": CAROL}
    only_comms = RoleRules(roles=(DEFAULT_ROLES[0],))
    listed = incidents.holders(session, incident, only_comms)
    assert [(role.key, user) for role, user in listed] == [
        ("lead", "U0OWNER"),
        ("comms", "U0DAVE"),
        ("scribe", CAROL),
    ]


def test_an_unknown_role_is_refused_naming_the_roles_there_are(session: Session):
    incident = declare(session)
    with pytest.raises(InvalidInput, match=r"no role 'pilot'. Roles: lead, comms, scribe") as e:
        give(session, incident, "pilot", CAROL)
    assert e.value.field == "role"
    assert events_of(session, incident.id, EventKind.ROLE_ASSIGNED) == []


@pytest.mark.parametrize("key", ["lead", "owner", "assignee", "me", "nobody"])
def test_reserved_words_cannot_be_configured_roles(key: str):
    with pytest.raises(ValueError, match="reserved"):
        parse_roles(f"{key}=Someone: does things")


def test_role_keys_are_case_insensitive_and_owner_means_the_lead(session: Session):
    incident = declare(session)
    give(session, incident, " COMMS ", CAROL)
    give(session, incident, "owner", "U0DAVE")
    assert held(session, incident) == {"lead": "U0DAVE", "comms": CAROL, "scribe": None}
    assert RULES.get("Lead") is LEAD


@pytest.mark.parametrize("who", ["<!channel>", "C0CHANNEL", "token:ci", "bob", "S0GROUP"])
def test_a_role_goes_to_a_person_only(session: Session, who: str):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="must be a person"):
        give(session, incident, "comms", who)
    assert held(session, incident)["comms"] is None


def test_a_role_of_a_missing_incident_is_not_found(session: Session):
    with pytest.raises(NotFound, match="no incident INC-999"):
        incidents.assign_role(session, 999, "comms", CAROL, BOB, rules=RULES)


def test_giving_a_role_to_whoever_holds_it_changes_nothing(session: Session):
    incident = declare(session)
    give(session, incident, "comms", CAROL)
    before = last_row_id(session)
    with pytest.raises(InvalidInput, match=r"Nothing changed: <@U0CAROL> is already the Comm"):
        give(session, incident, "comms", CAROL)
    session.rollback()
    with pytest.raises(InvalidInput, match="Nothing changed: nobody is the Scribe of INC-"):
        give(session, incident, "scribe", None)
    session.rollback()
    with pytest.raises(InvalidInput, match="Nothing changed: the lead is already nobody"):
        give(session, incident, "lead", None)
    session.rollback()
    assert len(events_of(session, incident.id, EventKind.ROLE_ASSIGNED)) == 1
    assert new_rows(session, incident.id, before) == []


def test_one_person_may_hold_several_roles_and_each_role_one_person(session: Session):
    incident = declare(session)
    give(session, incident, "lead", CAROL)
    give(session, incident, "comms", CAROL)
    give(session, incident, "scribe", CAROL)
    assert held(session, incident) == {"lead": CAROL, "comms": CAROL, "scribe": CAROL}
    give(session, incident, "comms", "U0DAVE")
    assert held(session, incident)["comms"] == "U0DAVE"
    rows = session.scalars(select(IncidentRole).where(IncidentRole.incident_id == incident.id))
    assert sorted((r.role, r.user_id, r.assigned_by) for r in rows) == [
        ("comms", "U0DAVE", "U0BOB"),
        ("scribe", CAROL, "U0BOB"),
    ]
    give(session, incident, "comms", None)
    assert held(session, incident)["comms"] is None
    changes = events_of(session, incident.id, EventKind.ROLE_ASSIGNED)
    assert [(e.field, e.from_value, e.to_value) for e in changes] == [
        ("comms", None, CAROL),
        ("scribe", None, CAROL),
        ("comms", CAROL, "U0DAVE"),
        ("comms", "U0DAVE", None),
    ]
    assert all(e.actor == "U0BOB" and e.details == {"role": e.field} for e in changes)


def test_a_closed_incident_takes_roles_from_admins_only(session: Session):
    incident = declare(session)
    for status in ("resolved", "closed"):
        incidents.change_status(session, incident.id, status, ALICE, resolution=resolution(status))
    session.commit()
    with pytest.raises(PermissionDenied, match="closed; only an incident admin"):
        give(session, incident, "comms", CAROL)
    session.rollback()
    with pytest.raises(PermissionDenied, match="closed"):
        give(session, incident, "lead", CAROL)
    session.rollback()
    give(session, incident, "scribe", CAROL, actor=ADMIN)
    give(session, incident, "lead", CAROL, actor=ADMIN)
    assert held(session, incident) == {"lead": CAROL, "comms": None, "scribe": CAROL}
    assert incident.status == Status.CLOSED


# --- what an assignment tells -----------------------------------------------------------------


def test_a_role_given_edits_the_card_and_channel_tells_both_invites_and_dms_the_duties(
    session: Session,
):
    incident = with_channel(session)
    before = last_row_id(session)
    give(session, incident, "comms", CAROL)
    [event] = events_of(session, incident.id, EventKind.ROLE_ASSIGNED)
    rows = new_rows(session, incident.id, before)
    assert [row.action for row in rows] == [
        DeliveryAction.UPDATE_CARD,
        DeliveryAction.UPDATE_CHANNEL,
        DeliveryAction.POST_THREAD,
        DeliveryAction.POST_CHANNEL,
        DeliveryAction.INVITE_CHANNEL,
        DeliveryAction.TELL_USER,
    ]
    assert rows[2].payload == rows[3].payload == {"event_ids": [event.id]}
    assert rows[4].payload == {"invite": [CAROL]}
    dm = rows[5]
    assert dm.payload["user"] == CAROL and dm.payload["via"] == "dm"
    assert dm.payload["about"] == "role" and dm.payload["event_ids"] == [event.id]
    assert "text" not in dm.payload  # worded by the surface when it is sent
    assert incident.updated_at == LATER


def test_a_role_left_empty_is_told_but_nobody_is_invited_or_dmed(session: Session):
    incident = with_channel(session)
    give(session, incident, "scribe", CAROL)
    before = last_row_id(session)
    give(session, incident, "scribe", None)
    assert [row.action for row in new_rows(session, incident.id, before)] == [
        DeliveryAction.UPDATE_CARD,
        DeliveryAction.UPDATE_CHANNEL,
        DeliveryAction.POST_THREAD,
        DeliveryAction.POST_CHANNEL,
    ]


def test_without_a_card_a_role_is_still_dmed(session: Session):
    incident = declare(session)
    give(session, incident, "comms", CAROL)
    [dm] = new_rows(session, incident.id)
    assert (dm.action, dm.payload["user"], dm.payload["about"]) == (
        DeliveryAction.TELL_USER,
        CAROL,
        "role",
    )


@pytest.mark.parametrize("how", ["assign_role", "assign", "take_lead"])
def test_the_lead_is_the_owner_however_it_is_given_with_the_same_effects(
    session: Session, how: str
):
    incident = with_channel(session)
    before = last_row_id(session)
    if how == "assign_role":
        incidents.assign_role(session, incident.id, "lead", CAROL, BOB, rules=RULES, now=LATER)
    elif how == "assign":
        incidents.assign(session, incident.id, BOB, owner=CAROL, now=LATER)
    else:
        incidents.take_lead(session, incident.id, Actor(CAROL), rules=RULES, now=LATER)
    session.commit()
    assert incident.owner == CAROL and incident.leaderless_since is None
    [event] = events_of(session, incident.id, EventKind.ASSIGNED)
    assert (event.field, event.from_value, event.to_value) == ("owner", None, CAROL)
    assert event.details == {"role": "lead"}
    rows = new_rows(session, incident.id, before)
    assert [row.action for row in rows] == [
        DeliveryAction.UPDATE_CARD,
        DeliveryAction.UPDATE_CHANNEL,
        DeliveryAction.POST_THREAD,
        DeliveryAction.POST_CHANNEL,
        DeliveryAction.TELL_USER,
        DeliveryAction.INVITE_CHANNEL,
    ]
    assert rows[4].payload["about"] == "role" and rows[4].payload["user"] == CAROL
    assert rows[4].payload["event_ids"] == [event.id]
    assert rows[5].payload == {"invite": [CAROL]}
    assert events_of(session, incident.id, EventKind.ROLE_ASSIGNED) == []


def test_assigning_owner_and_assignee_at_once_dms_only_the_lead(session: Session):
    incident = declare(session, slack_channel_id=CARD_CHANNEL)
    before = last_row_id(session)
    incidents.assign(session, incident.id, BOB, owner=CAROL, assignee="U0DAVE", now=LATER)
    session.commit()
    dms = [r for r in new_rows(session, incident.id, before) if r.action == "tell_user"]
    assert [(dm.payload["user"], dm.payload["about"]) for dm in dms] == [(CAROL, "role")]
    session.expire_all()
    assigned = events_of(session, incident.id, EventKind.ASSIGNED)
    assert [(e.field, e.details) for e in assigned] == [
        ("owner", {"role": "lead"}),
        ("assignee", {}),
    ]


# --- "I'll lead" and handoffs ------------------------------------------------------------------


def test_a_second_ill_lead_says_who_leads_and_changes_nothing(session: Session):
    incident = declare(session)
    incidents.take_lead(session, incident.id, Actor(CAROL), rules=RULES, now=LATER)
    session.commit()
    before = last_row_id(session)
    with pytest.raises(Conflict, match=rf"^<@{CAROL}> already leads INC-{incident.id}\.$"):
        incidents.take_lead(session, incident.id, BOB, rules=RULES)
    session.rollback()
    with pytest.raises(Conflict, match=rf"<@{CAROL}> already leads"):
        incidents.take_lead(session, incident.id, Actor(CAROL), rules=RULES)
    session.rollback()
    assert incident.owner == CAROL
    assert len(events_of(session, incident.id, EventKind.ASSIGNED)) == 1
    assert new_rows(session, incident.id, before) == []


@pytest.mark.parametrize("who", ["token:alertmanager", "local-admin"])
def test_only_a_person_can_take_the_lead(session: Session, who: str):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="must be a person"):
        incidents.take_lead(session, incident.id, Actor(who, is_admin=True), rules=RULES)
    assert incident.owner is None


def test_a_handoff_stores_its_summary_on_one_line(session: Session):
    incident = declare(session, owner=CAROL, slack_channel_id=CARD_CHANNEL)
    give(session, incident, "lead", "U0DAVE", handoff="  DB failover done;\n  watch the queue  ")
    [event] = events_of(session, incident.id, EventKind.ASSIGNED)
    assert (event.from_value, event.to_value) == (CAROL, "U0DAVE")
    assert event.details == {"role": "lead", "handoff": "DB failover done; watch the queue"}
    assert incident.leaderless_since is None


def test_a_handoff_through_assign_is_the_same(session: Session):
    incident = declare(session, owner=CAROL)
    incidents.assign(session, incident.id, BOB, owner="U0DAVE", handoff="all yours", now=LATER)
    [event] = events_of(session, incident.id, EventKind.ASSIGNED)
    assert event.details == {"role": "lead", "handoff": "all yours"}


@pytest.mark.parametrize(
    ("owner", "role", "to"),
    [
        (None, "lead", CAROL),  # nobody to hand it from
        (CAROL, "lead", None),  # nobody to hand it to
        (CAROL, "comms", "U0DAVE"),  # not the lead
    ],
)
def test_a_handoff_summary_is_only_for_a_lead_handed_between_two_people(
    session: Session, owner: str | None, role: str, to: str | None
):
    incident = declare(session, owner=owner)
    with pytest.raises(InvalidInput, match="handing the lead from one person to another") as e:
        give(session, incident, role, to, handoff="context")
    assert e.value.field == "handoff"
    session.rollback()
    assert incident.owner == owner
    assert events_of(session, incident.id, EventKind.ASSIGNED) == []


def test_a_handoff_summary_too_long_is_refused(session: Session):
    incident = declare(session, owner=CAROL)
    with pytest.raises(InvalidInput, match="Handoff summary is too long: 501") as e:
        give(session, incident, "lead", "U0DAVE", handoff="x" * 501)
    assert e.value.field == "handoff"
    session.rollback()
    give(session, incident, "lead", "U0DAVE", handoff="x" * 500)
    assert incident.owner == "U0DAVE"


def test_a_blank_handoff_is_no_handoff(session: Session):
    incident = declare(session)
    give(session, incident, "lead", CAROL, handoff="   ")
    [event] = events_of(session, incident.id, EventKind.ASSIGNED)
    assert event.details == {"role": "lead"}


# --- leaderless_since --------------------------------------------------------------------------


def test_leaderless_since_is_set_at_declare_without_a_lead_and_follows_the_lead(session: Session):
    with_lead = declare(session, owner=CAROL)
    assert with_lead.leaderless_since is None
    incident = declare(session)
    assert incident.leaderless_since == T0
    give(session, incident, "lead", CAROL)
    assert incident.leaderless_since is None
    give(session, incident, "lead", "U0DAVE", now=LATER + timedelta(minutes=1))
    assert incident.leaderless_since is None
    left = LATER + timedelta(minutes=2)
    incidents.assign(session, incident.id, BOB, owner=None, now=left)
    session.commit()
    assert incident.leaderless_since == left


def test_other_roles_do_not_count_as_a_lead(session: Session):
    incident = declare(session)
    give(session, incident, "comms", CAROL)
    assert incident.leaderless_since == T0


def test_roles_are_exported_with_their_dataclasses():
    assert isinstance(LEAD, Role)
    assert incidents.LEAD is LEAD
    assert {"assign_role", "take_lead", "holders", "remind_lead"} <= set(incidents.__all__)


# --- the lead reminder sweep (real commits, the fake Slack) ------------------------------------

Sessions = sessionmaker[Session]
AFTER = timedelta(minutes=5)  # LEAD_REMINDER_AFTER's default
SECOND = timedelta(seconds=1)


def sent_for(sessions: Sessions, incident_id: int) -> list[str]:
    """The actions delivered for the incident's lead reminders."""
    reminder_ids = {e.id for e in events_in(sessions, incident_id, EventKind.LEAD_REMINDER)}
    with sessions() as session:
        rows = list(
            session.scalars(
                select(Delivery).where(Delivery.event_id.in_(reminder_ids)).order_by(Delivery.id)
            )
        )
        assert all(r.delivered_at is not None for r in rows)
        return [r.action.value for r in rows]


def set_lead(sessions: Sessions, incident_id: int, lead: str | None, at: datetime) -> None:
    with sessions.begin() as session:
        incidents.assign(session, incident_id, REPORTER, owner=lead, now=at)


def test_a_sev1_without_a_lead_is_reminded_after_five_minutes_once_per_interval(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, ts = with_card(jobs, sessions, "SEV1", BASE)
    assert row(sessions, incident_id).leaderless_since == BASE
    thread_before = len(fake_slack.thread(CHANNEL, ts))

    assert jobs.remind_leads(BASE + AFTER - SECOND) == 0
    assert jobs.remind_leads(BASE + AFTER) == 1
    assert jobs.remind_leads(BASE + AFTER) == 0, "once per interval"
    assert jobs.remind_leads(BASE + 2 * AFTER - SECOND) == 0
    assert jobs.remind_leads(BASE + 2 * AFTER) == 1

    reminders = events_in(sessions, incident_id, EventKind.LEAD_REMINDER)
    assert [(e.actor, e.details["leaderless_minutes"]) for e in reminders] == [
        ("system", 5),
        ("system", 10),
    ]
    assert row(sessions, incident_id).lead_reminded_at == BASE + 2 * AFTER
    assert sent_for(sessions, incident_id) == ["post_thread", "post_thread"]
    assert len(fake_slack.thread(CHANNEL, ts)) == thread_before + 2
    # A reminder is not an update: the severity's reminders still count from the last change.
    assert row(sessions, incident_id).updated_at == BASE


def test_the_lead_reminder_is_posted_in_the_incident_channel_too(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    with sessions.begin() as session:
        draft = IncidentDraft(title="Payments down", severity="SEV1", slack_channel_id=CHANNEL)
        incident_id = incidents.declare(
            session, draft, REPORTER, now=BASE, channels=ChannelRules()
        ).id
    jobs.deliverer.drain(now=BASE)
    assert row(sessions, incident_id).own_channel_id is not None
    assert jobs.remind_leads(BASE + AFTER) == 1
    assert sent_for(sessions, incident_id) == ["post_thread", "post_channel"]


@pytest.mark.parametrize(("severity", "reminded"), [("SEV2", 1), ("SEV3", 0), ("SEV4", 0)])
def test_only_sev1_and_sev2_get_lead_reminders(
    fake_slack: FakeSlack, committing_sessions: Sessions, severity: str, reminded: int
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, _ = with_card(jobs, sessions, severity, BASE)
    assert jobs.remind_leads(BASE + timedelta(hours=1)) == reminded
    assert len(events_in(sessions, incident_id, EventKind.LEAD_REMINDER)) == reminded


def test_no_lead_reminder_while_there_is_a_lead_and_none_once_resolved(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    led, _ = with_card(jobs, sessions, "SEV1", BASE, owner="U0OWNER0001")
    resolved, _ = with_card(jobs, sessions, "SEV1", BASE)
    with sessions.begin() as session:
        incidents.change_status(
            session, resolved, "resolved", REPORTER, resolution=resolution("resolved"), now=BASE
        )
    assert jobs.remind_leads(BASE + timedelta(hours=1)) == 0
    assert events_in(sessions, led, EventKind.LEAD_REMINDER) == []
    assert events_in(sessions, resolved, EventKind.LEAD_REMINDER) == []


def test_a_lead_leaving_starts_the_wait_again_and_a_new_lead_ends_the_reminders(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id, _ = with_card(jobs, sessions, "SEV1", BASE, owner="U0OWNER0001")
    left = BASE + timedelta(minutes=20)
    set_lead(sessions, incident_id, None, left)
    assert row(sessions, incident_id).leaderless_since == left
    assert jobs.remind_leads(left + AFTER - SECOND) == 0, "five minutes from when the lead left"
    assert jobs.remind_leads(left + AFTER) == 1

    # Taken, then left again a minute later: the wait starts again from then.
    with sessions.begin() as session:
        incidents.take_lead(
            session, incident_id, Actor("U0TAKER0001"), rules=RULES, now=left + AFTER
        )
    assert jobs.remind_leads(left + 3 * AFTER) == 0
    again = left + AFTER + timedelta(minutes=1)
    set_lead(sessions, incident_id, None, again)
    assert jobs.remind_leads(again + AFTER - SECOND) == 0
    assert jobs.remind_leads(again + AFTER) == 1
    assert len(events_in(sessions, incident_id, EventKind.LEAD_REMINDER)) == 2


def test_quiet_hours_do_not_hold_a_lead_reminder_back(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions, quiet_hours=(time(0, 0), time(23, 59)))
    assert jobs.in_quiet_hours(BASE + AFTER)
    with_card(jobs, sessions, "SEV1", BASE)
    assert jobs.remind_leads(BASE + AFTER) == 1


def test_lead_reminders_off_send_none(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    jobs.settings = replace(jobs.settings, role_rules=RoleRules(lead_reminder_after=None))
    with_card(jobs, sessions, "SEV1", BASE)
    assert jobs.remind_leads(BASE + timedelta(days=1)) == 0


def test_lead_reminder_after_is_a_setting(fake_slack: FakeSlack, committing_sessions: Sessions):
    sessions = committing_sessions
    rules = RoleRules(lead_reminder_after=timedelta(seconds=30))
    jobs = make_jobs(fake_slack, sessions, role_rules=rules)
    with_card(jobs, sessions, "SEV2", BASE)
    assert jobs.remind_leads(BASE + timedelta(seconds=29)) == 0
    assert jobs.remind_leads(BASE + timedelta(seconds=30)) == 1


def test_two_schedulers_at_once_remind_each_leaderless_incident_once(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    one, two = make_jobs(fake_slack, sessions), make_jobs(fake_slack, sessions)
    ids = [with_card(one, sessions, "SEV1", BASE)[0] for _ in range(5)]
    for minutes in (5, 10):
        at = BASE + timedelta(minutes=minutes)
        sent = run_together(lambda at=at: one.remind_leads(at), lambda at=at: two.remind_leads(at))
        assert sum(sent) == 5
    for incident_id in ids:
        assert len(events_in(sessions, incident_id, EventKind.LEAD_REMINDER)) == 2


def test_an_incident_without_a_card_gets_no_lead_reminder(
    fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    jobs = make_jobs(fake_slack, sessions)
    incident_id = declare_in(sessions, "SEV1", BASE, channel=None)
    assert jobs.remind_leads(BASE + timedelta(hours=1)) == 0
    assert events_in(sessions, incident_id, EventKind.LEAD_REMINDER) == []


def test_two_ill_lead_clicks_at_once_make_one_lead_and_one_answer_naming_them(
    committing_sessions: Sessions,
):
    sessions = committing_sessions
    incident_id = declare_in(sessions, "SEV1", BASE, channel=None)

    def click(who: str) -> str:
        try:
            with sessions.begin() as session:
                incidents.take_lead(session, incident_id, Actor(who), rules=RULES, now=BASE)
            return "took it"
        except Conflict as error:
            return str(error)

    answers = run_together(lambda: click("U0FIRST0001"), lambda: click("U0SECOND001"))
    lead = row(sessions, incident_id).owner
    assert sorted(answers) == sorted(["took it", f"<@{lead}> already leads INC-{incident_id}."])
    assert len(events_in(sessions, incident_id, EventKind.ASSIGNED)) == 1


def test_the_api_patch_of_the_owner_is_the_lead_path_too(session: Session):
    incident = declare(session)
    incidents.update(session, incident.id, BOB, {"owner": CAROL}, now=LATER)
    session.commit()
    [event] = events_of(session, incident.id, EventKind.ASSIGNED)
    assert event.details == {"role": "lead"}
    assert incident.leaderless_since is None
    [dm] = new_rows(session, incident.id)
    assert (dm.payload["user"], dm.payload["about"]) == (CAROL, "role")


def test_the_assignee_is_not_the_lead(session: Session):
    incident = declare(session)
    incidents.assign(session, incident.id, BOB, assignee=CAROL, now=LATER)
    session.commit()
    assert incident.leaderless_since == T0
    assert new_rows(session, incident.id) == []

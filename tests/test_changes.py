"""Declaring and changing incidents: limits at and over their edges, permissions, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import (
    Actor,
    IncidentDraft,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
    Status,
)
from tests.steps import FIXED

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = Actor("U0ALICE")
BOB = Actor("U0BOB")
ADMIN = Actor("U0ADMIN", is_admin=True)


def declare(session: Session, actor: Actor = ALICE, **fields: object) -> Incident:
    draft = {"title": "Checkout is failing", "severity": "SEV2", **fields}
    incident = incidents.declare(session, IncidentDraft(**draft), actor, now=T0)
    session.commit()
    return incident


def events_of(session: Session, incident_id: int) -> list[IncidentEvent]:
    return list(
        session.scalars(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
    )


def deliveries_of(session: Session, incident_id: int) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery).where(Delivery.incident_id == incident_id).order_by(Delivery.id)
        )
    )


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


# --- declare ----------------------------------------------------------------------------------


def test_declare_stores_everything_and_round_trips_emoji(session: Session):
    incident = declare(
        session,
        title="  🔥 Paiements en échec : 支付失败 ",
        severity="critical",
        description="Users see 💥 on checkout.\nSecond line.",
        service="payments-api 💳",
        category="Outage",
        owner="U0OWNER",
        assignee="U0BOB",
        slack_team_id="T0TEAM",
        slack_channel_id="C0INCIDENTS",
    )
    session.expire_all()
    stored = session.get(Incident, incident.id)
    assert stored.title == "🔥 Paiements en échec : 支付失败"
    assert stored.description == "Users see 💥 on checkout.\nSecond line."
    assert stored.service == "payments-api 💳"
    assert stored.severity == Severity.SEV1
    assert stored.category == "outage"
    assert stored.status == Status.OPEN
    assert (stored.reporter, stored.owner, stored.assignee) == ("U0ALICE", "U0OWNER", "U0BOB")
    assert stored.created_at == stored.updated_at == T0
    assert stored.acknowledged_at is None
    [created] = events_of(session, incident.id)
    assert (created.kind, created.actor, created.to_value) == (EventKind.CREATED, "U0ALICE", "SEV1")
    [card, duties] = deliveries_of(session, incident.id)
    assert card.action == DeliveryAction.POST_CARD
    # The lead, named by the reporter, is told so with the lead's duties.
    assert duties.action == DeliveryAction.TELL_USER
    assert (duties.payload["user"], duties.payload["about"]) == ("U0OWNER", "role")


def test_declare_without_a_channel_queues_nothing(session: Session):
    incident = declare(session)
    assert deliveries_of(session, incident.id) == []


@pytest.mark.parametrize("channel", [None, "U0ALICE", "D0DMCHAN1", "<#C1>"])
def test_an_incident_that_needs_a_card_needs_a_channel(session: Session, channel: str | None):
    draft = IncidentDraft(
        title="Checkout down", severity="SEV2", slack_channel_id=channel, needs_card=True
    )
    with pytest.raises(InvalidInput, match="Pick a channel for the incident's card") as raised:
        incidents.declare(session, draft, ALICE)
    assert raised.value.field == "channel"
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


@pytest.mark.parametrize(
    ("title", "ok"),
    [
        ("ab", False),
        ("  ab  ", False),
        ("abc", True),
        ("   ", False),
        ("x" * 255, True),
        ("x" * 256, False),
        (" " + "x" * 255 + " ", True),
        ("🔥" * 255, True),
        ("🔥" * 256, False),
    ],
)
def test_title_limits(session: Session, title: str, ok: bool):
    if ok:
        assert declare(session, title=title).title == title.strip()
        return
    with pytest.raises(InvalidInput) as error:
        declare(session, title=title)
    assert error.value.field == "title"
    assert count(session, Incident) == 0


@pytest.mark.parametrize(
    ("field", "limit"),
    [("description", 10_000), ("service", 120)],
)
def test_optional_text_limits(session: Session, field: str, limit: int):
    assert getattr(declare(session, **{field: "y" * limit}), field) == "y" * limit
    with pytest.raises(InvalidInput) as error:
        declare(session, **{field: "y" * (limit + 1)})
    assert str(error.value) == (
        f"{field.capitalize()} is too long: {limit + 1:,} characters, the limit is {limit:,}."
    )
    assert error.value.field == field
    assert count(session, Incident) == 1


def test_blank_optional_fields_are_stored_as_empty(session: Session):
    incident = declare(session, description="   ", service="", category=None)
    assert (incident.description, incident.service, incident.category) == (None, None, None)


def test_category_must_come_from_the_configured_list(session: Session):
    with pytest.raises(InvalidInput) as error:
        declare(session, category="meltdown")
    assert str(error.value) == (
        "Unknown category 'meltdown'. Use one of: outage, degradation, security, data, other."
    )
    custom = incidents.declare(
        session,
        IncidentDraft(title="Cert expiring", severity="low", category="compliance"),
        ALICE,
        categories=("compliance", "other"),
    )
    assert custom.category == "compliance"
    with pytest.raises(InvalidInput, match="Use one of: compliance, other"):
        incidents.declare(
            session,
            IncidentDraft(title="Cert expiring", severity="low", category="outage"),
            ALICE,
            categories=("compliance", "other"),
        )


def test_bad_severity_and_nul_characters_are_refused(session: Session):
    with pytest.raises(InvalidInput, match=r"Unknown severity 'sev9'\. Use one of: SEV1"):
        declare(session, severity="sev9")
    with pytest.raises(InvalidInput, match="NUL character") as error:
        declare(session, description="bad\x00byte")
    assert error.value.field == "description"
    assert count(session, Incident) == 0


def test_unknown_incident(session: Session):
    with pytest.raises(NotFound, match=r"^There is no incident INC-999\.$"):
        incidents.get_incident(session, "INC-999")
    with pytest.raises(NotFound, match="INC-999"):
        incidents.change_status(session, 999, "resolved", ALICE, resolution=FIXED)
    with pytest.raises(NotFound, match="INC-999"):
        incidents.add_note(session, "#999", ALICE, "hello")


# --- severity, edit, assign ------------------------------------------------------------------


def test_change_severity(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    incidents.change_severity(
        session, incident.id, "sev1", BOB, note="Spreading", now=T0 + timedelta(minutes=5)
    )
    assert incident.severity == Severity.SEV1
    assert incident.updated_at == T0 + timedelta(minutes=5)
    event = events_of(session, incident.id)[-1]
    assert (event.kind, event.from_value, event.to_value, event.text, event.actor) == (
        EventKind.SEVERITY_CHANGED,
        "SEV2",
        "SEV1",
        "Spreading",
        "U0BOB",
    )
    with pytest.raises(InvalidInput, match=r"is already SEV1\."):
        incidents.change_severity(session, incident.id, "critical", BOB)


def test_closed_incidents_are_read_only_except_for_admins(session: Session):
    incident = declare(session)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED)
    for change in (
        lambda actor: incidents.change_severity(session, incident.id, "sev4", actor),
        lambda actor: incidents.edit(session, incident.id, actor, {"title": "Renamed"}),
        lambda actor: incidents.assign(session, incident.id, actor, owner="U0NEW"),
    ):
        with pytest.raises(PermissionDenied, match="is closed; only an incident admin"):
            change(ALICE)
        change(ADMIN)
    assert (incident.severity, incident.title, incident.owner) == (
        Severity.SEV4,
        "Renamed",
        "U0NEW",
    )


def test_edit_records_one_event_per_changed_field_and_one_thread_reply(session: Session):
    incident = declare(session, description="old", slack_channel_id="C0INCIDENTS")
    before = len(deliveries_of(session, incident.id))
    incidents.edit(
        session,
        incident.id,
        BOB,
        {
            "title": "Checkout is failing",  # unchanged: no event
            "description": None,
            "service": "payments",
            "cause": "Pool exhausted",
        },
        now=T0 + timedelta(minutes=9),
    )
    edits = [e for e in events_of(session, incident.id) if e.kind == EventKind.FIELD_CHANGED]
    assert [(e.field, e.from_value, e.to_value) for e in edits] == [
        ("description", "old", None),
        ("service", None, "payments"),
        ("cause", None, "Pool exhausted"),
    ]
    new = deliveries_of(session, incident.id)[before:]
    assert [d.action for d in new] == [DeliveryAction.UPDATE_CARD, DeliveryAction.POST_THREAD]
    assert new[1].payload == {"event_ids": [e.id for e in edits]}
    assert incident.updated_at == T0 + timedelta(minutes=9)


def test_edit_without_changes_is_a_no_op(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    version = incident.version
    incidents.edit(session, incident.id, BOB, {"title": " Checkout is failing "})
    session.flush()
    assert incident.version == version
    assert len(events_of(session, incident.id)) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": "no"}, "title"),
        ({"title": "t" * 256}, "title"),
        ({"description": "d" * 10_001}, "description"),
        ({"service": "s" * 121}, "service"),
        ({"cause": "c" * 10_001}, "cause"),
        ({"resolution": "r" * 10_001}, "resolution"),
        ({"category": "nope"}, "category"),
    ],
)
def test_bad_edits_change_nothing(session: Session, changes: dict, field: str):
    incident = declare(session)
    with pytest.raises(InvalidInput) as error:
        incidents.edit(session, incident.id, BOB, {"service": "payments", **changes})
    assert error.value.field == field
    session.refresh(incident)
    assert incident.service is None
    assert len(events_of(session, incident.id)) == 1


def test_edit_refuses_fields_that_are_not_editable(session: Session):
    incident = declare(session)
    with pytest.raises(InvalidInput, match="can't be edited: reporter, status"):
        incidents.edit(session, incident.id, BOB, {"status": "closed", "reporter": "U0X"})


def test_assign_owner_and_assignee(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    incidents.assign(session, incident.id, BOB, owner="U0OWNER", assignee="U0BOB")
    assert (incident.owner, incident.assignee) == ("U0OWNER", "U0BOB")
    incidents.assign(session, incident.id, BOB, assignee=None)
    assert incident.assignee is None
    assigned = [e for e in events_of(session, incident.id) if e.kind == EventKind.ASSIGNED]
    assert [(e.field, e.from_value, e.to_value) for e in assigned] == [
        ("owner", None, "U0OWNER"),
        ("assignee", None, "U0BOB"),
        ("assignee", "U0BOB", None),
    ]
    with pytest.raises(InvalidInput, match="Nothing changed: the owner is already U0OWNER"):
        incidents.assign(session, incident.id, BOB, owner="U0OWNER")
    with pytest.raises(InvalidInput, match="Say who"):
        incidents.assign(session, incident.id, BOB)
    with pytest.raises(InvalidInput, match="Owner is too long"):
        incidents.assign(session, incident.id, BOB, owner="U" * 65)


# --- notes ------------------------------------------------------------------------------------


def test_notes_at_and_over_the_limit(session: Session):
    incident = declare(session)
    note = incidents.add_note(session, incident.id, BOB, "n" * 3000)
    assert note.text == "n" * 3000
    for bad, message in (("n" * 3001, "Note is too long: 3,001"), ("   ", "needs some text")):
        with pytest.raises(InvalidInput, match=message):
            incidents.add_note(session, incident.id, BOB, bad)
    assert len([e for e in events_of(session, incident.id) if e.kind == EventKind.NOTE]) == 1


def test_note_keeps_the_time_it_happened_and_its_source(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    said_at = T0 - timedelta(minutes=30)
    note = incidents.add_note(
        session,
        incident.id,
        BOB,
        "From the channel: db is slow 🐢",
        occurred_at=said_at,
        source_url="https://example.slack.com/archives/C1/p1",
        now=T0 + timedelta(minutes=1),
    )
    assert note.occurred_at == said_at
    assert note.recorded_at == T0 + timedelta(minutes=1)
    assert note.details == {"source_url": "https://example.slack.com/archives/C1/p1"}
    assert incident.updated_at == T0 + timedelta(minutes=1)
    # The timeline is ordered by when things happened, so the note comes before the declaration.
    assert [e.kind for e in incidents.timeline(session, incident.id)] == [
        EventKind.NOTE,
        EventKind.CREATED,
    ]
    assert [e.kind for e in incidents.timeline(session, incident.id, limit=1)] == [
        EventKind.CREATED
    ]


def test_delete_note_by_author_or_admin_only(session: Session):
    incident = declare(session)
    note = incidents.add_note(session, incident.id, BOB, "secret token abc123")
    with pytest.raises(PermissionDenied, match="Only the note's author or an incident admin"):
        incidents.delete_note(session, note.id, ALICE)
    assert note.text == "secret token abc123"
    incidents.delete_note(session, note.id, BOB, now=T0 + timedelta(hours=1))
    assert (note.text, note.deleted_by, note.deleted_at) == (None, "U0BOB", T0 + timedelta(hours=1))
    deleted = events_of(session, incident.id)[-1]
    assert (deleted.kind, deleted.details) == (EventKind.NOTE_DELETED, {"note_id": note.id})
    with pytest.raises(NotFound, match="already deleted"):
        incidents.delete_note(session, note.id, BOB)

    other = incidents.add_note(session, incident.id, BOB, "another")
    incidents.delete_note(session, other.id, ADMIN)
    assert other.deleted_by == "U0ADMIN"


def test_delete_note_refuses_things_that_are_not_notes(session: Session):
    incident = declare(session)
    created = events_of(session, incident.id)[0]
    with pytest.raises(NotFound, match=f"There is no note {created.id}"):
        incidents.delete_note(session, created.id, ADMIN)
    with pytest.raises(NotFound, match="There is no note 999999"):
        incidents.delete_note(session, 999_999, ADMIN)


# --- delete -----------------------------------------------------------------------------------


def test_only_admins_delete_incidents(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    incident.card_ts = "1700000000.000100"
    incidents.add_note(session, incident.id, BOB, "note")
    session.commit()
    with pytest.raises(
        PermissionDenied, match=f"Only an incident admin can delete INC-{incident.id}"
    ):
        incidents.delete_incident(session, incident.id, ALICE)
    assert session.get(Incident, incident.id) is not None

    assert incidents.delete_incident(session, f"INC-{incident.id}", ADMIN) == "Checkout is failing"
    session.commit()
    session.expire_all()
    assert session.get(Incident, incident.id) is None
    assert events_of(session, incident.id) == []
    removal = session.scalars(
        select(Delivery).where(Delivery.action == DeliveryAction.DELETE_CARD)
    ).one()
    assert removal.payload == {
        "channel": "C0INCIDENTS",
        "ts": "1700000000.000100",
        "ref": f"INC-{incident.id}",
    }
    with pytest.raises(NotFound):
        incidents.delete_incident(session, incident.id, ADMIN)


def test_admins_come_from_the_configured_list():
    assert Actor.of("U0ADMIN", {"U0ADMIN", "U0OTHER"}).is_admin
    assert not Actor.of("U0ALICE", {"U0ADMIN"}).is_admin


# --- the outbox -------------------------------------------------------------------------------


def test_every_change_queues_a_card_edit_and_a_thread_reply_in_its_transaction(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    posts = [DeliveryAction.UPDATE_CARD, DeliveryAction.POST_THREAD]
    # Then a DM: a status change to the reporter (a subscriber), a new lead to the lead.
    changes = [
        (lambda: incidents.change_status(session, incident.id, "investigating", BOB), "U0ALICE"),
        (lambda: incidents.change_severity(session, incident.id, "sev1", BOB), None),
        (lambda: incidents.edit(session, incident.id, BOB, {"service": "payments"}), None),
        (lambda: incidents.assign(session, incident.id, BOB, owner="U0BOB"), "U0BOB"),
        (lambda: incidents.add_note(session, incident.id, BOB, "looking"), None),
    ]
    for change, told in changes:
        before = len(deliveries_of(session, incident.id))
        change()
        session.commit()
        new = deliveries_of(session, incident.id)[before:]
        dms = [DeliveryAction.TELL_USER] if told else []
        assert [d.action for d in new] == posts + dms
        assert [d.payload["user"] for d in new[2:]] == ([told] if told else [])
        event = session.get(IncidentEvent, new[1].event_id)
        assert event.incident_id == incident.id
        assert all(d.delivered_at is None and d.attempts == 0 for d in new)


def test_a_rolled_back_change_leaves_no_event_and_no_delivery(session: Session):
    incident = declare(session, slack_channel_id="C0INCIDENTS")
    events, deliveries = count(session, IncidentEvent), count(session, Delivery)
    incidents.change_status(session, incident.id, "investigating", BOB)
    session.rollback()
    assert (count(session, IncidentEvent), count(session, Delivery)) == (events, deliveries)
    session.refresh(incident)
    assert incident.status == Status.OPEN

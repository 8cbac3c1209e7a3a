"""Follow-ups in the domain: adding, changing, done and won't do, exports queued once, what the
tracker says back, lists; the close rule (CLOSE_REQUIRES) on every status move; the weekly digest;
the review's fields."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.incidents import (
    Actor,
    Conflict,
    IncidentDraft,
    InvalidInput,
    NotFound,
    PermissionDenied,
    UpdateDraft,
    followups,
    review,
)
from bot.incidents.followups import FollowUpDraft, FollowUpQuery, FollowUpRules
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    FollowUp,
    FollowUpStatus,
    Incident,
    IncidentEvent,
    ReviewStatus,
    Status,
)
from tests.fakeslack import FakeSlack
from tests.steps import FIXED
from tests.test_scheduler_jobs import make_jobs

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)  # a Monday
TODAY = T0.date()
ALICE = Actor("U0ALICE")
BOB = "U0BOB"
ADMIN = Actor("U0ADMIN", is_admin=True)
RULES = FollowUpRules()
GITHUB = replace(RULES, tracker="github")


def declare(session: Session, **fields: object) -> Incident:
    draft = {
        "title": "Checkout is failing",
        "severity": "SEV2",
        "slack_channel_id": "C0CARDS",
        **fields,
    }
    incident = incidents.declare(session, IncidentDraft(**draft), ALICE, now=T0)
    session.flush()
    return incident


def add(session: Session, incident: Incident, title: str = "Add a retry budget", **draft: object):
    return followups.add_followup(
        session, incident.id, FollowUpDraft(title=title, **draft), ALICE, RULES, now=T0
    )


def rows(session: Session, after: int = 0) -> list[Delivery]:
    return list(session.scalars(select(Delivery).where(Delivery.id > after).order_by(Delivery.id)))


def last_row_id(session: Session) -> int:
    return session.scalar(select(func.max(Delivery.id))) or 0


def kinds(session: Session, incident: Incident) -> list[EventKind]:
    return list(
        session.scalars(
            select(IncidentEvent.kind)
            .where(IncidentEvent.incident_id == incident.id)
            .order_by(IncidentEvent.id)
        )
    )


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("2026-12-20", date(2026, 12, 20)),
        ("in 2w", date(2026, 12, 21)),
        ("2w", date(2026, 12, 21)),
        ("in 3d", date(2026, 12, 10)),
        ("3 days", date(2026, 12, 10)),
        ("IN 1 WEEK", date(2026, 12, 14)),
        ("today", TODAY),
        ("tomorrow", date(2026, 12, 8)),
    ],
)
def test_due_dates_read_as_a_date_or_a_span_in_days_or_weeks(text: str, due: date) -> None:
    assert followups.parse_due(text, TODAY) == due


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("next week", "is not a due date"),
        ("2026-13-01", "is not a due date"),
        ("20/12/2026", "is not a due date"),
        ("in 2m", "is not a due date"),
        ("2026-12-06", "is in the past"),
        ("in 999w", "more than 5 years away"),
        ("", "is not a due date"),
    ],
)
def test_a_due_date_that_is_not_one_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        followups.parse_due(text, TODAY)
    assert refused.value.field == "due"


def test_follow_up_ids_read_with_or_without_their_prefix() -> None:
    assert followups.parse_followup_id("FU-12") == 12
    assert followups.parse_followup_id(" fu-7 ") == 7
    assert followups.parse_followup_id("12") == 12
    assert followups.format_followup_id(12) == "FU-12"
    for bad in ("INC-12", "FU-0", "0", "-3", None, True, "FU-99999999999"):
        with pytest.raises(InvalidInput):
            followups.parse_followup_id(bad)


# --- adding -----------------------------------------------------------------------------------


def test_a_follow_up_is_added_to_the_timeline_the_card_and_thread_and_its_owner_is_told(
    session: Session,
) -> None:
    incident = declare(session)
    before = last_row_id(session)
    followup = add(session, incident, owner=BOB, due_on=date(2026, 12, 20))
    assert (followup.title, followup.owner, followup.priority) == (
        "Add a retry budget",
        BOB,
        "medium",
    )
    assert followup.status == FollowUpStatus.OPEN and followup.created_by == ALICE.user_id
    event = session.scalars(
        select(IncidentEvent).where(IncidentEvent.kind == EventKind.FOLLOWUP_ADDED)
    ).one()
    assert event.text == "Add a retry budget"
    assert event.details == {
        "followup_id": followup.id,
        "title": "Add a retry budget",
        "owner": BOB,
        "due_on": "2026-12-20",
        "priority": "medium",
    }
    actions = [(r.action, r.payload.get("about")) for r in rows(session, before)]
    assert actions == [
        (DeliveryAction.UPDATE_CARD, None),
        (DeliveryAction.POST_THREAD, None),
        (DeliveryAction.TELL_USER, followups.DM_FOLLOWUP_ASSIGNED),
    ]
    told = rows(session, before)[-1].payload
    assert told["user"] == BOB and told["followup_id"] == followup.id
    assert told["event_ids"] == [event.id]


def test_naming_yourself_owner_sends_no_dm_and_no_owner_is_fine(session: Session) -> None:
    incident = declare(session)
    before = last_row_id(session)
    add(session, incident, owner=ALICE.user_id)
    add(session, incident, title="Write the runbook")
    assert DeliveryAction.TELL_USER not in [r.action for r in rows(session, before)]


@pytest.mark.parametrize(
    ("draft", "field", "message"),
    [
        ({"title": "ab"}, "title", "at least 3"),
        ({"title": "x" * 256}, "title", "too long"),
        ({"title": "Fix it", "owner": "<!channel>"}, "owner", "must be a person"),
        ({"title": "Fix it", "priority": "urgent"}, "priority", "Use one of: high, medium, low"),
        ({"title": "Fix it", "due_on": date(2026, 12, 1)}, "due", "in the past"),
    ],
)
def test_a_bad_follow_up_is_refused_and_nothing_is_written(
    session: Session, draft: dict, field: str, message: str
) -> None:
    incident = declare(session)
    before = last_row_id(session)
    events = len(kinds(session, incident))
    with pytest.raises(InvalidInput, match=message) as refused:
        followups.add_followup(session, incident.id, FollowUpDraft(**draft), ALICE, RULES, now=T0)
    assert refused.value.field == field
    assert session.scalar(select(func.count()).select_from(FollowUp)) == 0
    assert rows(session, before) == [] and len(kinds(session, incident)) == events


def test_a_follow_up_of_an_incident_that_does_not_exist_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="INC-999"):
        followups.add_followup(session, 999, FollowUpDraft(title="Fix it"), ALICE, RULES, now=T0)


def test_a_closed_incident_still_takes_follow_ups_and_their_changes(session: Session) -> None:
    incident = declare(session)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED, now=T0)
    followup = add(session, incident, owner=BOB)
    followups.change_followup(session, followup.id, ALICE, RULES, due_on=date(2027, 1, 4), now=T0)
    followups.set_followup_status(session, followup.id, "done", ALICE, now=T0)
    assert followup.status == FollowUpStatus.DONE and incident.status == Status.CLOSED


def test_priorities_come_from_the_settings(session: Session) -> None:
    rules = FollowUpRules(priorities=("p1", "p2", "p3", "p4"))
    incident = declare(session)
    made = followups.add_followup(session, incident.id, FollowUpDraft(title="Fix it"), ALICE, rules)
    assert made.priority == "p3"  # the middle one, rounded down the list
    urgent = FollowUpDraft(title="Fix it now", priority="P1")
    assert followups.add_followup(session, incident.id, urgent, ALICE, rules).priority == "p1"


# --- changing ---------------------------------------------------------------------------------


def test_a_change_records_each_field_and_tells_a_new_owner(session: Session) -> None:
    incident = declare(session)
    followup = add(session, incident)
    before = last_row_id(session)
    followups.change_followup(
        session, followup.id, ALICE, RULES, owner=BOB, due_on=date(2026, 12, 24), priority="high"
    )
    changed = session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.kind == EventKind.FOLLOWUP_CHANGED)
        .order_by(IncidentEvent.id)
    ).all()
    assert [(e.field, e.from_value, e.to_value) for e in changed] == [
        ("owner", None, BOB),
        ("priority", "medium", "high"),
        ("due_on", None, "2026-12-24"),
    ]
    told = [r for r in rows(session, before) if r.action == DeliveryAction.TELL_USER]
    assert [r.payload["user"] for r in told] == [BOB]
    # The card is edited, no thread reply for each small change.
    assert DeliveryAction.POST_THREAD not in [r.action for r in rows(session, before)]


def test_a_change_that_changes_nothing_writes_nothing(session: Session) -> None:
    incident = declare(session)
    followup = add(session, incident, owner=BOB)
    before = last_row_id(session)
    followups.change_followup(session, followup.id, ALICE, RULES, owner=BOB, priority="medium")
    assert rows(session, before) == []


def test_done_and_wont_do_record_who_and_when_and_reopening_clears_them(session: Session) -> None:
    incident = declare(session)
    followup = add(session, incident)
    later = T0 + timedelta(hours=2)
    followups.set_followup_status(session, followup.id, "done", Actor(BOB), now=later)
    assert (followup.status, followup.closed_by, followup.closed_at) == (
        FollowUpStatus.DONE,
        BOB,
        later,
    )
    with pytest.raises(Conflict, match=f"FU-{followup.id} is already done"):
        followups.set_followup_status(session, followup.id, FollowUpStatus.DONE, ALICE)
    followups.set_followup_status(session, followup.id, "open", ALICE, now=later)
    assert (followup.closed_by, followup.closed_at) == (None, None)
    followups.set_followup_status(session, followup.id, "won't do", ALICE, now=later)
    assert followup.status == FollowUpStatus.WONT_DO
    with pytest.raises(InvalidInput, match="not a follow-up status"):
        followups.set_followup_status(session, followup.id, "finished", ALICE)
    with pytest.raises(NotFound, match="FU-404"):
        followups.set_followup_status(session, 404, "done", ALICE)


# --- exports and tickets ----------------------------------------------------------------------


def test_an_export_is_queued_once_and_needs_a_tracker(session: Session) -> None:
    incident = declare(session)
    followup = add(session, incident)
    with pytest.raises(InvalidInput, match="No tracker is set up"):
        followups.request_export(session, followup.id, ALICE, RULES)
    before = last_row_id(session)
    followups.request_export(session, followup.id, ALICE, GITHUB, now=T0)
    queued = rows(session, before)
    assert [(r.action, r.payload, r.incident_id) for r in queued] == [
        (
            DeliveryAction.EXPORT_FOLLOWUP,
            {"followup_id": followup.id, "tracker": "github"},
            incident.id,
        )
    ]
    with pytest.raises(Conflict, match="already being exported"):
        followups.request_export(session, followup.id, ALICE, GITHUB)
    followups.record_ticket(
        session, followup.id, "github", "acme/ops#7", "https://github.com/acme/ops/issues/7", now=T0
    )
    with pytest.raises(Conflict, match=r"already exported: https://github\.com/acme/ops/issues/7"):
        followups.request_export(session, followup.id, ALICE, GITHUB)
    assert len(rows(session, before)) == 2  # the export, then the card's edit for its link


def test_auto_export_queues_each_new_follow_up(session: Session) -> None:
    incident = declare(session)
    before = last_row_id(session)
    rules = replace(GITHUB, auto_export=True)
    followups.add_followup(session, incident.id, FollowUpDraft(title="Fix it"), ALICE, rules)
    assert DeliveryAction.EXPORT_FOLLOWUP in [r.action for r in rows(session, before)]


def test_a_recorded_ticket_is_shown_once_and_the_tracker_closing_it_marks_it_done(
    session: Session,
) -> None:
    incident = declare(session)
    followup = add(session, incident)
    url = "https://github.com/acme/ops/issues/7"
    for _ in range(2):  # found by its marker after an export whose answer was lost: no news
        followups.record_ticket(session, followup.id, "github", "acme/ops#7", url, now=T0)
    assert kinds(session, incident).count(EventKind.FOLLOWUP_EXPORTED) == 1
    assert (followup.ticket_key, followup.ticket_url) == ("acme/ops#7", url)
    assert (
        followups.ticket_state(session, "github", "acme/ops#8", FollowUpStatus.DONE, by="x") is None
    )
    for _ in range(2):  # a webhook sent twice
        followups.ticket_state(
            session, "github", "acme/ops#7", FollowUpStatus.WONT_DO, by="octocat", now=T0
        )
    assert (
        followup.status == FollowUpStatus.WONT_DO and followup.closed_by == "tracker:github:octocat"
    )
    assert incidents.actor_label(followup.closed_by) == "octocat on GitHub"
    assert kinds(session, incident).count(EventKind.FOLLOWUP_CHANGED) == 1
    followups.ticket_state(
        session, "github", "acme/ops#7", FollowUpStatus.OPEN, by="octocat", now=T0
    )
    assert followup.status == FollowUpStatus.OPEN
    assert followups.tickets_to_poll(session, "github", T0 + timedelta(minutes=1), 10) == [followup]
    assert followups.tickets_to_poll(session, "jira", T0 + timedelta(minutes=1), 10) == []


# --- lists ------------------------------------------------------------------------------------


def test_lists_filter_by_owner_status_overdue_and_incident(session: Session) -> None:
    first, second = declare(session), declare(session, title="Search is slow")
    late = add(session, first, "Rotate the keys", owner=BOB, due_on=TODAY)
    soon = add(session, first, "Add an alert", owner=BOB, due_on=TODAY + timedelta(days=3))
    done = add(session, second, "Fix the index", owner=ALICE.user_id)
    followups.set_followup_status(session, done.id, "done", ALICE)
    tomorrow = TODAY + timedelta(days=1)

    def ids(**query: object) -> list[int]:
        page = followups.list_followups(session, FollowUpQuery(today=tomorrow, **query))
        return [f.id for f in page.items]

    assert ids() == [late.id, soon.id, done.id]
    assert ids(owner=BOB) == [late.id, soon.id]
    assert ids(overdue=True) == [late.id]
    assert ids(status=FollowUpStatus.DONE) == [done.id]
    assert ids(incident_id=second.id) == [done.id]
    page = followups.list_followups(session, FollowUpQuery(limit=1, offset=1))
    assert page.total == 3 and len(page.items) == 1
    assert [f.id for f in followups.followups_of(session, first.id)] == [late.id, soon.id]
    assert followups.is_overdue(late, tomorrow) and not followups.is_overdue(done, tomorrow)


# --- the close rule ---------------------------------------------------------------------------


def close(session: Session, incident: Incident, actor: Actor = ALICE, **kwargs: object):
    return incidents.change_status(
        session, incident.id, "closed", actor, resolution=FIXED, followup_rules=RULES, **kwargs
    )


def test_an_incident_with_untriaged_follow_ups_does_not_close_and_is_told_which(
    session: Session,
) -> None:
    incident = declare(session)
    undated = add(session, incident, owner=BOB)
    unowned = add(session, incident, "Write the runbook", due_on=TODAY)
    triaged = add(session, incident, "Add an alert", owner=BOB, due_on=TODAY)
    which = rf"2 follow-ups have no owner or due date \(FU-{undated.id}, FU-{unowned.id}\)"
    with pytest.raises(InvalidInput, match=which):
        close(session, incident)
    assert incident.status == Status.OPEN and incident.closed_at is None
    # An update that closes obeys the same rule.
    with pytest.raises(InvalidInput, match="can't close yet"):
        incidents.post_update(
            session,
            incident.id,
            UpdateDraft(summary="Done here", status="closed", resolution=FIXED),
            ALICE,
            followup_rules=RULES,
        )
    # Resolving is fine: only closing waits for the follow-ups.
    incidents.change_status(session, incident.id, "resolved", ALICE, resolution=FIXED)
    followups.change_followup(session, undated.id, ALICE, RULES, due_on=TODAY)
    followups.set_followup_status(session, unowned.id, "wont_do", ALICE)
    close(session, incident)
    assert incident.status == Status.CLOSED and triaged.status == FollowUpStatus.OPEN


def test_an_admin_may_close_before_with_a_reason_and_nobody_else_may(session: Session) -> None:
    incident = declare(session)
    add(session, incident)
    with pytest.raises(InvalidInput, match="An incident admin may close it anyway"):
        close(session, incident, ADMIN)
    with pytest.raises(PermissionDenied, match="Only an incident admin"):
        close(session, incident, ALICE, override="I said so")
    close(session, incident, ADMIN, override="  Owners are on leave; tracked in OPS-1  ")
    event = session.scalars(
        select(IncidentEvent).where(IncidentEvent.kind == EventKind.STATUS_CHANGED)
    ).one()
    assert event.details["override"] == "Owners are on leave; tracked in OPS-1"


def test_close_requires_review_done_or_nothing(session: Session) -> None:
    incident = declare(session)
    add(session, incident)
    rules = replace(RULES, close_requires="review-done")
    with pytest.raises(InvalidInput, match="until its review is done \\(it is draft\\)"):
        incidents.change_status(
            session, incident.id, "closed", ALICE, resolution=FIXED, followup_rules=rules
        )
    review.edit_review(session, incident.id, ALICE, {"review_status": "done"}, now=T0)
    incidents.change_status(
        session, incident.id, "closed", ALICE, resolution=FIXED, followup_rules=rules
    )
    other = declare(session)
    add(session, other)
    none = replace(RULES, close_requires="none")
    incidents.change_status(
        session, other.id, "closed", ALICE, resolution=FIXED, followup_rules=none
    )
    assert (incident.status, other.status) == (Status.CLOSED, Status.CLOSED)


def test_auto_close_skips_an_incident_it_may_not_close_and_closes_the_rest(
    fake_slack: FakeSlack, committing_sessions: sessionmaker[Session]
) -> None:
    jobs = make_jobs(fake_slack, committing_sessions, auto_close_after=timedelta(days=1))
    with committing_sessions.begin() as session:
        ids = []
        for title in ("Oldest, untriaged", "Newer, triaged"):
            incident = declare(session, title=title, slack_channel_id=None)
            incidents.change_status(
                session, incident.id, "resolved", ALICE, resolution=FIXED, now=T0
            )
            ids.append(incident.id)
        followups.add_followup(session, ids[0], FollowUpDraft(title="Fix it"), ALICE, RULES, now=T0)
    assert jobs.auto_close(T0 + timedelta(days=2)) == 1
    with committing_sessions() as session:
        statuses = [session.get_one(Incident, i).status for i in ids]
    assert statuses == [Status.RESOLVED, Status.CLOSED]


# --- the weekly digest ------------------------------------------------------------------------


def test_the_digest_dms_each_owner_their_overdue_follow_ups_once_a_week(session: Session) -> None:
    incident = declare(session)
    zone = ZoneInfo("Europe/Paris")
    late = add(session, incident, "Rotate the keys", owner=BOB, due_on=TODAY)
    also = add(session, incident, "Add an alert", owner=BOB, due_on=TODAY)
    add(session, incident, "Not yet due", owner=BOB, due_on=TODAY + timedelta(days=30))
    add(session, incident, "Nobody's", due_on=TODAY)
    mine = add(session, incident, "Alice's", owner=ALICE.user_id, due_on=TODAY)
    followups.set_followup_status(session, mine.id, "done", ALICE)
    monday_next = datetime(2026, 12, 14, 7, 59, tzinfo=UTC)  # 08:59 in Paris: not yet
    assert followups.queue_overdue_digest(session, RULES, zone, monday_next) == []
    before = last_row_id(session)
    at_nine = monday_next + timedelta(minutes=1)
    assert followups.queue_overdue_digest(session, RULES, zone, at_nine) == [BOB]
    assert [r.payload for r in rows(session, before)] == [
        {
            "user": BOB,
            "via": "dm",
            "about": followups.DM_FOLLOWUP_DIGEST,
            "followup_ids": [late.id, also.id],
            "ref": f"{BOB}'s overdue follow-ups",
        }
    ]
    # Later that week, or by another replica: sent already.
    assert followups.queue_overdue_digest(session, RULES, zone, at_nine + timedelta(days=2)) == []
    off = replace(RULES, digest=None)
    assert followups.queue_overdue_digest(session, off, zone, at_nine + timedelta(days=7)) == []
    friday = replace(RULES, digest=(4, time(16, 30)))
    thursday = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)
    assert followups.queue_overdue_digest(session, friday, zone, thursday) == []


# --- the review -------------------------------------------------------------------------------


def test_the_review_is_editable_on_a_closed_incident_and_each_change_is_recorded(
    session: Session,
) -> None:
    incident = declare(session)
    incidents.change_status(session, incident.id, "closed", ALICE, resolution=FIXED, now=T0)
    start, end = T0 - timedelta(minutes=30), T0 - timedelta(minutes=5)
    before = last_row_id(session)
    _, events = review.edit_review(
        session,
        incident.id,
        ALICE,
        {
            "impact_started_at": start,
            "impact_ended_at": end,
            "customer_impact": "  Checkout failed for 12% of EU customers ",
            "went_well": "Paging worked",
            "review_status": "in review",
            "reviewer": BOB,
        },
        now=T0,
    )
    assert [e.field for e in events] == [
        "impact_started_at",
        "impact_ended_at",
        "customer_impact",
        "went_well",
        "review_status",
        "reviewer",
    ]
    assert incident.customer_impact == "Checkout failed for 12% of EU customers"
    assert incident.review_status == ReviewStatus.IN_REVIEW
    assert review.impact_window(incident) == (start, end)
    assert DeliveryAction.POST_THREAD in [r.action for r in rows(session, before)]
    assert review.edit_review(session, incident.id, ALICE, {"went_well": "Paging worked"})[1] == []


def test_the_impact_window_defaults_to_declared_and_resolved(session: Session) -> None:
    incident = declare(session)
    assert review.impact_window(incident) == (T0, None)
    later = T0 + timedelta(hours=1)
    incidents.change_status(session, incident.id, "resolved", ALICE, resolution=FIXED, now=later)
    assert review.impact_window(incident) == (T0, later)


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"impact_ended_at": T0 - timedelta(days=1)}, "impact_ended_at", "can't end"),
        ({"impact_started_at": T0 + timedelta(days=1)}, "impact_started_at", "in the future"),
        ({"impact_started_at": "yesterday"}, "impact_started_at", "a date and time"),
        ({"review_status": "approved"}, "review_status", "not a review status"),
        ({"reviewer": "<!here>"}, "reviewer", "must be a person"),
        ({"went_badly": "x" * 4001}, "went_badly", "too long"),
    ],
)
def test_a_bad_review_value_is_refused_and_nothing_changes(
    session: Session, values: dict, field: str, message: str
) -> None:
    incident = declare(session)
    before = last_row_id(session)
    with pytest.raises(InvalidInput, match=message) as refused:
        review.edit_review(session, incident.id, ALICE, values, now=T0 + timedelta(hours=1))
    assert refused.value.field == field
    assert rows(session, before) == [] and incident.review_status == ReviewStatus.DRAFT
    with pytest.raises(InvalidInput, match="aren't review fields: title"):
        review.edit_review(session, incident.id, ALICE, {"title": "New"})

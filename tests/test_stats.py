"""`stats`: counts and MTTA/MTTM/MTTR over incidents declared in [since, until)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from bot import incidents
from bot.incidents import Actor, IncidentDraft, InvalidInput, Stats, Timings, stats
from db.models import Incident, Severity, Status
from tests.steps import resolution

SINCE = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=1)
REPORTER = Actor("U0REPORTER")
RESPONDER = Actor("U0RESPONDER")
ADMIN = Actor("U0ADMIN", is_admin=True)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def declare(
    session: Session, severity: str, at: datetime, title: str = "Checkout down"
) -> Incident:
    return incidents.declare(
        session, IncidentDraft(title=title, severity=severity), REPORTER, now=at
    )


def step(
    session: Session,
    incident: Incident,
    status: Status,
    after: timedelta,
    actor: Actor = RESPONDER,
) -> None:
    incidents.change_status(
        session,
        incident.id,
        status,
        actor,
        now=incident.created_at + after,
        resolution=resolution(status),
    )


def walk(session: Session, incident: Incident, *steps: tuple[Status, timedelta]) -> None:
    for status, after in steps:
        step(session, incident, status, after)


@pytest.fixture
def window(session: Session) -> dict[str, Incident]:
    """Six incidents inside the window and two just outside it, with known milestones."""
    made: dict[str, Incident] = {}
    # Two SEV1s acknowledged after 10 and 20 minutes, mitigated after 30 and 50, resolved after
    # 60 and 100: MTTA 15, MTTM 40, MTTR 80 minutes.
    made["sev1_a"] = declare(session, "SEV1", SINCE)  # `since` itself is inside
    walk(
        session,
        made["sev1_a"],
        (Status.INVESTIGATING, minutes(10)),
        (Status.MITIGATED, minutes(30)),
        (Status.RESOLVED, minutes(60)),
    )
    made["sev1_b"] = declare(session, "SEV1", SINCE + timedelta(hours=1))
    walk(
        session,
        made["sev1_b"],
        (Status.INVESTIGATING, minutes(20)),
        (Status.MITIGATED, minutes(50)),
        (Status.RESOLVED, minutes(100)),
    )
    # A SEV2 jumped straight from open to resolved after 45 minutes: every milestone at 45.
    made["sev2_jump"] = declare(session, "SEV2", SINCE + timedelta(hours=2))
    walk(session, made["sev2_jump"], (Status.RESOLVED, minutes(45)))
    # A SEV2 acknowledged after 5, resolved after 25 (mitigation stamped by the skip), reopened
    # after 40, resolved again after 90 and closed after 120: MTTR comes from the 90.
    made["sev2_reopened"] = declare(session, "SEV2", SINCE + timedelta(hours=3))
    walk(
        session,
        made["sev2_reopened"],
        (Status.INVESTIGATING, minutes(5)),
        (Status.RESOLVED, minutes(25)),
        (Status.INVESTIGATING, minutes(40)),
        (Status.RESOLVED, minutes(90)),
        (Status.CLOSED, minutes(120)),
    )
    made["sev3_open"] = declare(session, "SEV3", SINCE + timedelta(hours=4))
    made["sev4_ack"] = declare(session, "SEV4", UNTIL - timedelta(microseconds=1))
    walk(session, made["sev4_ack"], (Status.INVESTIGATING, minutes(7)))

    # Outside: one microsecond before `since`, and exactly at `until` (exclusive). Both are SEV1s
    # acknowledged after 1000 minutes, which would show in the SEV1 means if counted.
    made["before"] = declare(session, "SEV1", SINCE - timedelta(microseconds=1))
    walk(session, made["before"], (Status.CLOSED, minutes(1000)))
    made["at_until"] = declare(session, "SEV1", UNTIL)
    walk(session, made["at_until"], (Status.INVESTIGATING, minutes(1000)))
    return made


def test_counts_by_status_and_severity(session: Session, window: dict[str, Incident]) -> None:
    result = stats(session, SINCE, UNTIL)

    assert (result.since, result.until) == (SINCE, UNTIL)
    assert result.total == 6
    assert result.by_status == {
        Status.OPEN: 1,
        Status.INVESTIGATING: 1,
        Status.RESOLVED: 3,
        Status.CLOSED: 1,
    }
    assert result.by_severity == {
        Severity.SEV1: 2,
        Severity.SEV2: 2,
        Severity.SEV3: 1,
        Severity.SEV4: 1,
    }


def test_mean_times_per_severity_are_exact(session: Session, window: dict[str, Incident]) -> None:
    result = stats(session, SINCE, UNTIL)

    assert result.timings == {
        Severity.SEV1: Timings(count=2, mtta=minutes(15), mttm=minutes(40), mttr=minutes(80)),
        # MTTA (45 + 5) / 2, MTTM (45 + 25) / 2, MTTR (45 + 90) / 2.
        Severity.SEV2: Timings(count=2, mtta=minutes(25), mttm=minutes(35), mttr=minutes(67.5)),
        # Never acknowledged: no means rather than zero.
        Severity.SEV3: Timings(count=1, mtta=None, mttm=None, mttr=None),
        Severity.SEV4: Timings(count=1, mtta=minutes(7), mttm=None, mttr=None),
    }


def test_window_boundaries_since_inclusive_until_exclusive(
    session: Session, window: dict[str, Incident]
) -> None:
    # Widen by one microsecond on each side: the two outside incidents come in.
    wider = stats(session, SINCE - timedelta(microseconds=1), UNTIL + timedelta(microseconds=1))
    assert wider.total == 8
    assert wider.by_severity[Severity.SEV1] == 4
    assert (
        wider.timings[Severity.SEV1].mtta
        == (minutes(10) + minutes(20) + minutes(1000) + minutes(1000)) / 4
    )

    # Only `since` itself: the first SEV1.
    first = stats(session, SINCE, SINCE + timedelta(microseconds=1))
    assert (first.total, first.by_severity) == (1, {Severity.SEV1: 1})
    assert first.timings[Severity.SEV1].mtta == minutes(10)

    # A window ending at the first SEV1's creation holds only the one declared a microsecond before.
    before = stats(session, SINCE - timedelta(hours=1), SINCE)
    assert (before.total, before.by_status) == (1, {Status.CLOSED: 1})
    assert before.timings[Severity.SEV1].mttr == minutes(1000)

    # Starting at `until`: only the one declared exactly then.
    after = stats(session, UNTIL, UNTIL + timedelta(hours=1))
    assert (after.total, after.by_status) == (1, {Status.INVESTIGATING: 1})


def test_empty_window(session: Session, window: dict[str, Incident]) -> None:
    since = SINCE + timedelta(hours=5)
    result = stats(session, since, since + timedelta(hours=1))

    assert result == Stats(since=since, until=since + timedelta(hours=1))
    assert (result.total, result.by_status, result.timings) == (0, {}, {})


def test_a_forward_jump_stamps_the_skipped_milestones_at_once(
    session: Session, window: dict[str, Incident]
) -> None:
    jumped = window["sev2_jump"]
    at = jumped.created_at + minutes(45)

    assert (jumped.acknowledged_at, jumped.mitigated_at, jumped.resolved_at) == (at, at, at)
    assert jumped.closed_at is None

    straight_to_closed = declare(session, "SEV4", SINCE + timedelta(hours=6))
    step(session, straight_to_closed, Status.CLOSED, minutes(12))
    at = straight_to_closed.created_at + minutes(12)
    assert (
        straight_to_closed.acknowledged_at,
        straight_to_closed.mitigated_at,
        straight_to_closed.resolved_at,
        straight_to_closed.closed_at,
    ) == (at, at, at, at)
    sev4 = stats(session, SINCE, UNTIL).timings[Severity.SEV4]
    # MTTA (7 + 12) / 2; only the jumped one has MTTM and MTTR.
    assert sev4 == Timings(count=2, mtta=minutes(9.5), mttm=minutes(12), mttr=minutes(12))


def test_reopened_incident_counts_its_later_resolution(
    session: Session, window: dict[str, Incident]
) -> None:
    reopened = window["sev2_reopened"]
    created = reopened.created_at

    assert reopened.acknowledged_at == created + minutes(5)
    assert reopened.mitigated_at == created + minutes(25)
    assert reopened.resolved_at == created + minutes(90)
    assert reopened.closed_at == created + minutes(120)

    # Still open again (reopened, not yet re-resolved): no resolution time at all.
    pending = declare(session, "SEV3", SINCE + timedelta(hours=7))
    walk(
        session,
        pending,
        (Status.RESOLVED, minutes(30)),
        (Status.INVESTIGATING, minutes(50)),
    )
    assert (pending.resolved_at, pending.closed_at) == (None, None)
    sev3 = stats(session, SINCE, UNTIL).timings[Severity.SEV3]
    assert sev3 == Timings(count=2, mtta=minutes(30), mttm=minutes(30), mttr=None)


def test_admin_reopening_a_closed_incident_clears_resolution_and_closure(
    session: Session,
) -> None:
    incident = declare(session, "SEV1", SINCE)
    walk(session, incident, (Status.CLOSED, minutes(10)))
    step(session, incident, Status.INVESTIGATING, minutes(20), actor=ADMIN)
    step(session, incident, Status.RESOLVED, minutes(75))

    assert incident.resolved_at == SINCE + minutes(75)
    assert incident.closed_at is None
    assert stats(session, SINCE, UNTIL).timings[Severity.SEV1] == Timings(
        count=1, mtta=minutes(10), mttm=minutes(10), mttr=minutes(75)
    )


@pytest.mark.parametrize(
    "until", [SINCE, SINCE - timedelta(microseconds=1), SINCE - timedelta(days=30)]
)
def test_window_must_end_after_it_starts(session: Session, until: datetime) -> None:
    with pytest.raises(InvalidInput, match=r"^The end of the window must be after its start\.$"):
        stats(session, SINCE, until)

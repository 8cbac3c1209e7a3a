"""Where exports go among Slack's rows: after every due Slack row (a ticket can wait a moment, an
incident's card can't), the most severe incident's first among themselves, on a thread of their
own in the worker; an export waits for no failing card, and no card waits for a failing export.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot import incidents
from bot.delivery import DeliveryWorker
from bot.incidents import IncidentDraft
from db.models import DeliveryAction, Incident
from tests.fakeslack import FakeSlack
from tests.faketrackers.github import FakeGitHub
from tests.test_delivery import deliveries
from tests.trackers import (
    ALICE,
    CHANNEL,
    Sessions,
    deliverer,
    exported_followup,
    get_followup,
    now,
)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def declare(sessions: Sessions, severity: str = "SEV3") -> int:
    with sessions.begin() as session:
        draft = IncidentDraft(title="Search is slow", severity=severity, slack_channel_id=CHANNEL)
        return incidents.declare(session, draft, ALICE).id


def test_slack_rows_go_first_then_exports_most_severe_first(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    _, sev3_followup = exported_followup(
        sessions, "github", severity="SEV3", title="Low one", owner=ALICE.user_id
    )
    sev1_incident, sev1_followup = exported_followup(
        sessions, "github", severity="SEV1", title="Urgent one", owner=ALICE.user_id
    )
    sev4_incident = declare(sessions, "SEV4")
    outbox = deliverer(sessions, fake_slack, github=github)
    slack_rows = {r.id for r in deliveries(sessions) if r.action != DeliveryAction.EXPORT_FOLLOWUP}
    t0 = now()

    sent = []
    for step in range(40):
        at = t0 + timedelta(seconds=step)
        if outbox.drain(limit=1, now=at).delivered == 0:
            break
        [latest] = [
            r for r in deliveries(sessions) if r.delivered_at == at
        ]  # the one row this step sent
        sent.append(latest)

    exports = [r for r in sent if r.action == DeliveryAction.EXPORT_FOLLOWUP]
    assert [r.payload["followup_id"] for r in exports] == [sev1_followup, sev3_followup]
    first_export = sent.index(exports[0])
    assert {r.id for r in sent[:first_export]} == slack_rows, "a Slack row waited for an export"
    assert [i["title"] for i in github.all_issues()] == ["Urgent one", "Low one"]
    # Within Slack's rows, the SEV1 incident's card before the SEV4's.
    cards = [r.incident_id for r in sent if r.action == DeliveryAction.POST_CARD]
    assert cards.index(sev1_incident) < cards.index(sev4_incident)


def test_a_sev1_export_in_flight_holds_up_no_slack_update(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    """One Slack thread, as few as a worker has: the export answers slowly on its own thread."""
    sessions = committing_sessions
    _, followup_id = exported_followup(sessions, "github", severity="SEV1")
    outbox = deliverer(sessions, fake_slack, github=github, timeout=10.0)
    # Long enough that the card can only go out while the export waits, however loaded the
    # machine: the test's measure is "before the export's answer", not a time.
    github.answer_late("create", 8.0)
    worker = DeliveryWorker(outbox, threads=1)
    worker.start()
    try:
        github.wait_for(lambda: github.calls_to("create"), timeout=10)
        incident_id = declare(sessions, "SEV3")
        outbox.wake()

        fake_slack.wait_for(
            lambda: any(
                r.incident_id == incident_id and r.delivered_at for r in deliveries(sessions)
            ),
            timeout=6.0,
        )

        assert get_followup(sessions, followup_id).ticket_key is None, "the export is in flight"
        github.wait_for(lambda: get_followup(sessions, followup_id).ticket_key, timeout=15)
    finally:
        worker.stop()
    assert len(github.all_issues()) == 1


def test_an_export_waits_for_no_failing_card_and_no_card_for_a_failing_export(
    github: FakeGitHub, fake_slack: FakeSlack, committing_sessions: Sessions
):
    sessions = committing_sessions
    fake_slack.fail("chat.postMessage", error="channel_not_found", times=None)
    incident_id, followup_id = exported_followup(sessions, "github", severity="SEV1")
    outbox = deliverer(sessions, fake_slack, github=github)

    result = outbox.drain(incident_id=incident_id)

    assert get_followup(sessions, followup_id).ticket_key == "acme/ops#1"
    assert any(p.error == "channel_not_found" for p in result.problems)

    # The other way round: GitHub fails for good long; the incident's card still goes out.
    fake_slack.clear_faults()
    github.fail("create", 502, {"message": "Server Error"}, times=None)
    other_incident, other_followup = exported_followup(sessions, "github", severity="SEV1")

    result = outbox.drain(incident_id=other_incident, now=now() + timedelta(minutes=10))

    with sessions() as session:
        incident = session.get(Incident, other_incident)
        assert incident is not None and incident.card_ts is not None
    assert get_followup(sessions, other_followup).ticket_key is None
    assert any(p.exporting == f"FU-{other_followup}" for p in result.problems)

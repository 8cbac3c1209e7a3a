"""Shared by the trackers' tests: a follow-up with its export queued, a Deliverer that speaks to
the fake GitHub or Jira, and the export rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot import incidents
from bot.delivery import Deliverer
from bot.incidents import Actor, IncidentDraft, followups
from bot.incidents.followups import FollowUpDraft, FollowUpRules
from bot.settings_followups import GitHubSettings, JiraSettings
from db.models import Delivery, DeliveryAction, FollowUp
from tests.fakeslack import FakeSlack, defaults
from tests.faketrackers import github as gh
from tests.faketrackers import jira as jr
from tests.faketrackers.github import FakeGitHub
from tests.faketrackers.jira import FakeJira

Sessions = sessionmaker[Session]
ALICE = Actor("U0ALICE0001")
OWNER = "U0OWNER0001"
CHANNEL = defaults.CHANNEL_ID
DUE = date.today() + timedelta(days=14)


def now() -> datetime:
    return datetime.now(UTC)


def rules(tracker: str) -> FollowUpRules:
    return FollowUpRules(tracker=tracker)


def github_settings(fake: FakeGitHub, secret: str | None = None, **kw: str) -> GitHubSettings:
    return GitHubSettings(
        token=kw.get("token", fake.token),
        repo=kw.get("repo", gh.REPO),
        api_url=fake.url,
        webhook_secret=secret,
    )


def jira_settings(fake: FakeJira, secret: str | None = None, **kw: str) -> JiraSettings:
    return JiraSettings(
        url=fake.url,
        email=jr.EMAIL,
        api_token=kw.get("api_token", jr.API_TOKEN),
        project=kw.get("project", jr.PROJECT),
        issue_type=kw.get("issue_type", "Task"),
        webhook_secret=secret,
    )


def deliverer(
    sessions: Sessions,
    slack: FakeSlack,
    *,
    github: FakeGitHub | None = None,
    jira: FakeJira | None = None,
    timeout: float = 1.0,
    **kw: str,
) -> Deliverer:
    return Deliverer(
        sessions,
        slack.client(timeout=timeout),
        public_url="https://incidents.example",
        github=github_settings(github, **kw) if github else None,
        jira=jira_settings(jira, **kw) if jira else None,
        tracker_timeout=timeout,
    )


def exported_followup(
    sessions: Sessions,
    tracker: str,
    *,
    severity: str = "SEV3",
    title: str = "Add an alert on checkout errors",
    channel: str | None = CHANNEL,
    export: bool = True,
    owner: str = OWNER,
) -> tuple[int, int]:
    """An incident and a follow-up of it whose export is queued: (incident id, follow-up id)."""
    with sessions.begin() as session:
        draft = IncidentDraft(
            title="Checkout is failing", severity=severity, slack_channel_id=channel
        )
        incident = incidents.declare(session, draft, ALICE)
        followup = followups.add_followup(
            session,
            incident.id,
            FollowUpDraft(title, owner=owner, due_on=DUE, priority="high"),
            ALICE,
            rules(tracker),
        )
        if export:
            followups.request_export(session, followup.id, ALICE, rules(tracker))
        return incident.id, followup.id


def export_rows(sessions: Sessions) -> list[Delivery]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Delivery)
                .where(Delivery.action == DeliveryAction.EXPORT_FOLLOWUP)
                .order_by(Delivery.id)
            )
        )


def get_followup(sessions: Sessions, followup_id: int) -> FollowUp:
    with sessions() as session:
        followup = session.get(FollowUp, followup_id)
        assert followup is not None
        return followup

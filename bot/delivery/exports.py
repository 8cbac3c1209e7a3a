"""Follow-ups exported to the tracker (GitHub or Jira) through the outbox, exactly once as far
as the tracker allows, and the tickets' state read back.

An EXPORT_FOLLOWUP row (payload {"followup_id", "tracker"}) is claimed like any other; its place
is its follow-up (bot.delivery.order), and rows of Slack go before it, so an export never holds
up a card. Before the create the row is marked "sending" in its own commit; the HTTP call is made
outside any transaction; an unknown outcome (a timeout, a dropped connection, a 5xx) keeps the
mark, and the next attempt first looks for the ticket by the follow-up's marker (GitHub) or label
(Jira), no sooner than the tracker's grace after the attempt. The ticket made or found is stored
(followups.record_ticket) in the transaction that marks the row delivered.

Without a webhook (GITHUB_WEBHOOK_SECRET, JIRA_WEBHOOK_SECRET), the scheduler's "ticket-poll"
asks the tracker about open follow-ups' tickets (`poll`): reads only, safe to repeat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.incidents import followups, format_incident_id
from bot.settings_followups import GitHubSettings, JiraSettings
from bot.slack.blocks.coordination import web_page
from db.models import Delivery, DeliveryAction, FollowUp, Incident

from .calls import CardStyle, Unsendable
from .github import GitHub
from .jira import Jira
from .order import EXPORT, LIMITED_BY
from .outcomes import Outcome, Step, failed, rate_limited
from .trackers import TRACKER_TIMEOUT, ExportDraft, Tracker, TrackerFailure

log = logging.getLogger(__name__)

LEASE_MARGIN = timedelta(seconds=5)
# Calls one export may make: the bot's login, a lookup of a few pages, the create.
CALLS_PER_EXPORT = 6
# Open follow-ups' tickets are asked about no more often than this, this many per sweep.
POLL_EVERY = timedelta(minutes=5)
POLL_BATCH = 50


def place(tracker: str) -> str:
    """The rate limit's place for a tracker (the slack_rate_limits row's channel)."""
    return f"tracker:{tracker}"


@dataclass
class ExportCall:
    """One export prepared from its row (read inside the row's transaction, made after it)."""

    delivery_id: int
    action: DeliveryAction
    tracker: str
    draft: ExportDraft
    incident_id: int | None
    ref: str
    sending_since: datetime | None = None
    look_first: bool = False

    @property
    def method(self) -> str:
        return f"{self.tracker}.create"

    @property
    def channel(self) -> str:
        return place(self.tracker)


def ref_of(delivery: Delivery) -> str | None:
    """The follow-up an export row is about ("FU-3"); None for any other row."""
    if delivery.action != DeliveryAction.EXPORT_FOLLOWUP:
        return None
    return followups.format_followup_id(int(delivery.payload.get("followup_id") or 0))


def prepare(
    session: Session,
    delivery: Delivery,
    incident: Incident | None,
    trackers: Trackers,
    cards: CardStyle,
) -> ExportCall | str:
    """The export a row asks for, or a note when there is nothing to make."""
    followup = session.get(FollowUp, delivery.payload.get("followup_id"))
    if followup is None or incident is None:
        return "skipped: the follow-up was deleted"
    if followup.ticket_key is not None:
        return f"skipped: the ticket is made ({followup.ticket_key})"
    ref = followups.format_followup_id(followup.id)
    draft = ExportDraft(
        followup_id=followup.id,
        ref=ref,
        title=followup.title,
        incident_ref=format_incident_id(incident.id),
        incident_title=incident.title,
        incident_url=web_page(cards.public_url, incident.id),
        owner=followup.owner,
        due_on=followup.due_on,
        priority=followup.priority,
        source_permalink=followup.source_permalink,
    )
    tracker = str(delivery.payload.get("tracker") or "")
    if tracker not in trackers.by_name:
        # Set up the tracker (FOLLOWUP_TRACKER and its settings) and it goes.
        raise Unsendable("tracker_not_configured")
    return ExportCall(delivery.id, delivery.action, tracker, draft, incident.id, ref)


class Trackers:
    """The configured trackers (FOLLOWUP_TRACKER's, and any other with settings)."""

    def __init__(
        self,
        github: GitHubSettings | None = None,
        jira: JiraSettings | None = None,
        timeout: float = TRACKER_TIMEOUT,
    ) -> None:
        self.by_name: dict[str, Tracker] = {}
        if github is not None:
            self.by_name["github"] = GitHub(github, timeout)
        if jira is not None:
            self.by_name["jira"] = Jira(jira, timeout)
        self.lease = timedelta(seconds=timeout * CALLS_PER_EXPORT) + LEASE_MARGIN
        self.webhooks = {
            name: bool(s and s.webhook_secret) for name, s in (("github", github), ("jira", jira))
        }

    def perform(self, call: ExportCall, now: datetime | None) -> Outcome:
        tracker = self.by_name[call.tracker]
        if call.look_first:  # the tracker may list what it made a while late: not before then
            assert call.sending_since is not None
            ready = call.sending_since + tracker.look_grace
            if (now or datetime.now(UTC)) < ready:
                return Outcome(unknown=True, wait_until=ready)
        try:
            if call.look_first:
                assert call.sending_since is not None
                found = tracker.find(call.draft, call.sending_since)
                if found is not None:
                    return Outcome(found=True, ticket=(found.key, found.url))
            ticket = tracker.create(call.draft)
        except TrackerFailure as failure:
            # A refused lookup leaves the earlier attempt's outcome as unknown as it was.
            in_doubt = failure.unknown or (call.look_first and not failure.permanent)
            return Outcome(
                error=failure.code,
                note=failure.reason,
                retry_after=str(failure.retry_after) if failure.rate_limited else None,
                rate_limited=failure.rate_limited,
                unknown=in_doubt,
                permanent=failure.permanent,
            )
        return Outcome(ticket=(ticket.key, ticket.url))

    # --- reading the tickets back -----------------------------------------------------------------

    def poll(self, sessions: sessionmaker[Session], tracker: str | None, now: datetime) -> int:
        """Ask the tracker about open follow-ups' tickets not asked about for POLL_EVERY (none
        when its webhook is configured); returns how many changed status."""
        if tracker is None or tracker not in self.by_name or self.webhooks.get(tracker):
            return 0
        with sessions() as session:
            due = [
                (f.id, f.ticket_key)
                for f in followups.tickets_to_poll(session, tracker, now - POLL_EVERY, POLL_BATCH)
            ]
        changed = 0
        for followup_id, key in due:
            assert key is not None
            try:
                status = self.by_name[tracker].state(key)
            except TrackerFailure as failure:
                log.warning(
                    "ticket %s of %s: can't read its state (%s %s)",
                    key,
                    followups.format_followup_id(followup_id),
                    failure.code,
                    failure.reason,
                )
                if failure.rate_limited:
                    break
                with sessions.begin() as session:  # asked again in POLL_EVERY, not every sweep
                    followups.mark_polled(session, [followup_id], now)
                continue
            with sessions.begin() as session:
                followups.mark_polled(session, [followup_id], now)
                before = session.get(FollowUp, followup_id)
                was = before.status if before is not None else None
                # Who closed it there, a poll can't tell.
                after = followups.ticket_state(session, tracker, key, status, by="", now=now)
                changed += after is not None and after.status != was
        return changed


def record(
    session: Session,
    delivery: Delivery,
    incident: Incident | None,
    call: ExportCall,
    outcome: Outcome,
    now: datetime,
) -> Step:
    """The export's outcome on its row: the ticket stored, a wait, a retry or the end."""
    if outcome.ticket is not None:
        key, url = outcome.ticket
        delivery.delivered_at = now
        delivery.sending_since = None
        delivery.last_error = f"found after an unknown outcome: {key}" if outcome.found else None
        followups.record_ticket(session, call.draft.followup_id, call.tracker, key, url, now=now)
        log.info(
            "delivery %d: %s exported to %s as %s%s",
            delivery.id,
            call.ref,
            call.tracker,
            key,
            " (found after an unknown outcome, not made again)" if outcome.found else "",
        )
        return Step(found=outcome.found)
    assert outcome.error is not None
    if not outcome.unknown:
        delivery.sending_since = None
    if outcome.rate_limited:
        return rate_limited(
            session, delivery, call.channel, LIMITED_BY[EXPORT], outcome.retry_after, now
        )
    code = f"{outcome.error}: {outcome.note}" if outcome.note else outcome.error
    problem = failed(
        session,
        delivery,
        incident,
        code,
        now,
        outcome.retry_after,
        call.channel,
        permanent=outcome.permanent,
        exporting=call.ref,
    )
    problem.in_doubt = outcome.unknown
    return Step(problem=problem)

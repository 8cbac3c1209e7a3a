"""The outbox worker: sends queued Slack side effects (card posts and edits, thread replies).

Rows are written by the domain in the same transaction as the change they report, so a change is
never lost when Slack fails: the row stays, with its error, until a later drain sends it.

- Order: rows of one incident go strictly in order; across incidents the most severe incident
  (its current severity) goes first, then the oldest row.
- Rate limits: Slack's `Retry-After` holds back only that method in that channel.
- Exactly once: a post carries message metadata tagged with its row id. Before the post the row
  is leased and marked "sending" in its own commit; when the outcome is unknown (a timeout, a
  dropped connection, a worker that died mid-post) the tag is looked for in the channel or
  thread before posting again. Posts are never retried inside the Web API client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackObjectFormationError
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot import metrics
from bot.incidents.roles import RoleRules
from bot.settings_followups import GitHubSettings, JiraSettings
from db.models import (
    Delivery,
    DeliveryAction,
    Incident,
    SlackRateLimit,
)

from . import exports as export
from . import tell
from .calls import (
    BLIND_LOOKUP_ERRORS,
    ONCE_ONLY,
    CardStyle,
    SlackCall,
    Unsendable,
    find_tagged,
    pending,
    prepare,
)
from .channels import (
    CHANNEL_CALLS,
    after_post,
    before_post,
    open_channel,
    post_skipped,
    record_channel_call,
    record_opened,
)
from .order import (
    CALL_CHANNEL,
    CALL_METHOD,
    LIMITED_BY,
    SLACK_FIRST,
    URGENCY,
    behind_earlier,
    only_exports,
)
from .outcomes import MAX_BACKOFF as MAX_BACKOFF  # read here by tests
from .outcomes import Outcome, Step, failed, rate_limited
from .problems import DrainResult
from .recovery import Recovery
from .trackers import TRACKER_TIMEOUT

Call = SlackCall | export.ExportCall

log = logging.getLogger(__name__)

# Slack may list a fresh message a moment after accepting it: a post whose outcome is unknown is
# looked for no sooner than this after it was sent.
VISIBILITY_GRACE = timedelta(seconds=5)
# A lease outlives the Web API client's timeout by this much, so no second worker takes a row
# whose post may still be on its way.
LEASE_MARGIN = timedelta(seconds=5)


class Deliverer:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: WebClient,
        *,
        offer_channels: bool = False,
        public_url: str | None = None,
        role_rules: RoleRules | None = None,
        github: GitHubSettings | None = None,
        jira: JiraSettings | None = None,
        tracker_timeout: float = TRACKER_TIMEOUT,
        tracker: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.cards = CardStyle(offer_channels, public_url, role_rules or RoleRules(), tracker)
        # Calls that are safe to repeat (edits, deletes, lookups) keep the client's retries.
        self.client = client
        # Posts are never repeated by the client: only the outbox decides, after looking.
        self.poster = WebClient(
            token=client.token,
            base_url=client.base_url,
            timeout=client.timeout,
            headers=dict(client.headers),
            retry_handlers=[],
        )
        self.lease = timedelta(seconds=client.timeout) + LEASE_MARGIN
        self._wake = threading.Condition()
        self._woken = False
        self.recovery = Recovery(sessions, client, self.wake)
        # GitHub and Jira, for follow-ups' exports (bot.delivery.exports).
        self.trackers = export.Trackers(github, jira, tracker_timeout)

    # --- waking a worker ------------------------------------------------------------------------

    def wake(self) -> None:
        """Something is due now (a new row, a channel the bot just joined)."""
        with self._wake:
            self._woken = True
            self._wake.notify_all()

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, or until `wake()`."""
        with self._wake:
            if not self._woken:
                self._wake.wait(seconds)
            self._woken = False

    # --- draining -------------------------------------------------------------------------------

    def drain(
        self,
        *,
        incident_id: int | None = None,
        delivery_id: int | None = None,
        limit: int = 100,
        now: datetime | None = None,
        exports: bool | None = None,
    ) -> DrainResult:
        """Send due rows (of one incident, or the one row, or all), most urgent first, until
        none is due; `exports` True sends only follow-ups' exports, False only the rest. What a
        person was not told is logged, not in the result."""
        result = DrainResult()
        for _ in range(limit):
            step = self._step(incident_id, delivery_id, now, exports)
            if step is None:
                break
            if step.problem is not None:
                if not step.problem.telling:
                    result.problems.append(step.problem)
            elif not step.waiting:
                result.delivered += 1
                result.found += step.found
        return result

    def next_due(self, exports: bool | None = None) -> datetime | None:
        """When the earliest row that is not waiting behind another becomes sendable."""
        limited = aliased(SlackRateLimit)
        with self.sessions() as session:
            return session.scalar(
                select(
                    func.min(
                        func.greatest(
                            Delivery.next_attempt_at,
                            func.coalesce(Delivery.lease_until, Delivery.next_attempt_at),
                            func.coalesce(limited.until, Delivery.next_attempt_at),
                        )
                    )
                )
                .select_from(Delivery)
                .outerjoin(Incident, Incident.id == Delivery.incident_id)
                .outerjoin(
                    limited, (limited.channel_id == CALL_CHANNEL) & (limited.method == CALL_METHOD)
                )
                .where(pending(), ~behind_earlier(), *only_exports(exports))
            )

    def _step(
        self,
        incident_id: int | None,
        delivery_id: int | None,
        now: datetime | None,
        exports: bool | None = None,
    ) -> Step | None:
        """Claim one row, make its call outside any transaction, record the outcome."""
        with self.sessions.begin() as session:
            at = now or datetime.now(UTC)
            delivery = self._claim(session, incident_id, delivery_id, at, exports)
            if delivery is None:
                return None
            incident = session.get(Incident, delivery.incident_id) if delivery.incident_id else None
            if delivery.action == DeliveryAction.TELL_USER:
                expired = tell.expire(delivery, incident, at)
                if expired is not None:
                    return Step(problem=expired)
            try:
                if delivery.action == DeliveryAction.TELL_USER:
                    call: Call | str = tell.call_for(session, delivery, incident, self.cards)
                elif delivery.action == DeliveryAction.EXPORT_FOLLOWUP:
                    call = export.prepare(session, delivery, incident, self.trackers, self.cards)
                else:
                    call = prepare(session, delivery, incident, self.cards, at)
            except Unsendable as error:
                ref = export.ref_of(delivery)
                problem = failed(session, delivery, incident, error.code, at, exporting=ref)
                return Step(problem=problem)
            except SlackObjectFormationError as error:
                # Our rendering broke a Block Kit limit: resending the same thing can't succeed,
                # and the row must not block the incident's later updates.
                log.error("delivery %d: rendering failed: %s", delivery.id, error)
                problem = failed(session, delivery, incident, "invalid_blocks", at)
                return Step(problem=problem)
            if isinstance(call, str):
                delivery.delivered_at, delivery.last_error = at, call
                return Step()
            exporting = isinstance(call, export.ExportCall)
            delivery.lease_until = at + (self.trackers.lease if exporting else self.lease)
            if call.method in ONCE_ONLY or exporting:
                call.look_first = delivery.sending_since is not None
                delivery.sending_since = call.sending_since = delivery.sending_since or at
        outcome = self._perform(call, now)
        metrics.count_send(call.method, outcome)
        with self.sessions.begin() as session:
            step = self._record(session, call, outcome, now or datetime.now(UTC))
        if exporting:  # Slack's recovery is not the tracker's
            return step
        if outcome.error is None:
            self.recovery.answered(now)
        elif not outcome.rate_limited:
            self.recovery.failed(outcome.error)
        return step

    def _claim(
        self,
        session: Session,
        incident_id: int | None,
        delivery_id: int | None,
        now: datetime,
        exports: bool | None = None,
    ) -> Delivery | None:
        limited = exists().where(
            SlackRateLimit.channel_id == CALL_CHANNEL,
            SlackRateLimit.method == CALL_METHOD,
            SlackRateLimit.until > now,
        )
        query = (
            select(Delivery)
            .outerjoin(Incident, Incident.id == Delivery.incident_id)
            .where(
                pending(),
                Delivery.next_attempt_at <= now,
                or_(Delivery.lease_until.is_(None), Delivery.lease_until <= now),
                ~behind_earlier(),
                ~limited,
                *only_exports(exports),
            )
            .order_by(SLACK_FIRST, URGENCY, Delivery.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=Delivery)
        )
        if incident_id is not None:
            query = query.where(Delivery.incident_id == incident_id)
        if delivery_id is not None:
            query = query.where(Delivery.id == delivery_id)
        return session.scalars(query).first()

    # --- making it ------------------------------------------------------------------------------

    def _perform(self, call: Call, now: datetime | None) -> Outcome:
        if isinstance(call, export.ExportCall):
            return self.trackers.perform(call, now)
        if call.look_first:  # Slack may list what it took a moment late: not before then
            assert call.sending_since is not None
            ready = call.sending_since + VISIBILITY_GRACE
            if (now or datetime.now(UTC)) < ready:
                return Outcome(unknown=True, wait_until=ready)
        try:
            if call.method == "conversations.create":
                return self._open_channel(call)
            if call.method == tell.RESPONSE_URL:
                return Outcome(error=tell.answer(call, self.client.timeout))
            if call.method == "chat.postEphemeral":
                self.poster.chat_postEphemeral(**call.kwargs)
                return Outcome()
            if call.action == DeliveryAction.TELL_USER:
                tell.open_dm(self.client, call)  # then posted, tagged, as any post
            if call.method == "chat.postMessage":
                before_post(self.client, call)
                outcome = self._post(call)
                after_post(self.client, call, outcome.ts)
                return outcome
            if call.method in CHANNEL_CALLS:
                name, skipped = CHANNEL_CALLS[call.method](self.client, call)
                return Outcome(channel_name=name, skipped=skipped)
            if call.method == "chat.update":
                self._joining(call, lambda: self.client.chat_update(**call.kwargs))
                return Outcome()
            try:
                self.client.chat_delete(**call.kwargs)
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
                return Outcome(note="skipped: the card was already gone")
            return Outcome()
        except SlackApiError as error:
            status = error.response.status_code
            code = str(error.response.get("error") or f"http_{status}")
            headers = error.response.headers or {}
            # A 5xx may come after Slack stored the post: its outcome is unknown.
            return Outcome(
                error=code,
                retry_after=headers.get("Retry-After") or headers.get("retry-after"),
                rate_limited=status == 429,
                unknown=call.method in ONCE_ONLY and status >= 500,
            )
        except (OSError, TimeoutError) as error:  # refused, reset, timed out, dropped
            return Outcome(error=f"connection: {error}", unknown=call.method in ONCE_ONLY)

    def _post(self, call: SlackCall) -> Outcome:
        """Post, unless an earlier attempt whose outcome is unknown did: then find that one."""
        if call.look_first:
            try:
                found = find_tagged(self.client, call)
            except SlackApiError as error:
                code = error.response.get("error")
                if code not in BLIND_LOOKUP_ERRORS:
                    return Outcome(error=f"lookup: {code}", unknown=True)
                # Without the history scopes nothing can be checked: posting again may
                # repeat the message, never posting would lose it.
                log.warning(
                    "delivery %d of %s: can't look for its earlier post (%s); posting again",
                    call.delivery_id,
                    call.ref,
                    code,
                )
                found = None
            if found is not None:
                return Outcome(ts=found, found=True)
        response = self._joining(call, lambda: self.poster.chat_postMessage(**call.kwargs))
        return Outcome(ts=response.get("ts"))

    def _open_channel(self, call: SlackCall) -> Outcome:
        channel_id, name, skipped = open_channel(self.client, call)
        return Outcome(ts=channel_id, channel_name=name, skipped=skipped)

    def _joining(self, call: SlackCall, send: Callable[[], Any]) -> Any:
        """Make `send`; if the bot is not in the channel, join it (public only) and retry once.
        Slack refused the first try, so the retry cannot duplicate it."""
        try:
            return send()
        except SlackApiError as error:
            if error.response.get("error") != "not_in_channel":
                raise
            try:
                self.client.conversations_join(channel=call.channel)
            except SlackApiError as join_error:
                # Private channels can't be joined: a person must invite the bot. Report the
                # original not_in_channel, which says exactly that.
                log.info("could not join %s: %s", call.channel, join_error.response.get("error"))
                raise error from None
            return send()

    # --- recording the outcome ------------------------------------------------------------------

    def _record(self, session: Session, call: Call, outcome: Outcome, now: datetime) -> Step:
        delivery = session.get(Delivery, call.delivery_id, with_for_update=True)
        assert delivery is not None
        incident = session.get(Incident, delivery.incident_id) if delivery.incident_id else None
        delivery.lease_until = None
        if outcome.wait_until is not None:
            delivery.next_attempt_at = outcome.wait_until
            return Step(waiting=True)
        if isinstance(call, export.ExportCall):
            return export.record(session, delivery, incident, call, outcome, now)
        if outcome.error is None:
            delivery.delivered_at = now
            delivery.last_error = outcome.note
            delivery.slack_ts = outcome.ts
            delivery.sending_since = None
            if outcome.found:
                log.info(
                    "delivery %d of %s: found in Slack by its tag (%s), not posted again",
                    delivery.id,
                    call.ref,
                    outcome.ts,
                )
            if incident is not None:
                record_channel_call(session, incident, call, outcome.ts, outcome.channel_name, now)
                post_skipped(session, incident, outcome.skipped, now)
            if call.action == DeliveryAction.OPEN_CHANNEL and incident is not None:
                assert outcome.ts is not None and outcome.channel_name is not None
                record_opened(session, incident, outcome.ts, outcome.channel_name, now)
            return Step(found=outcome.found)
        if not outcome.unknown:
            delivery.sending_since = None
        if tell.dm_instead(delivery, outcome.error, now):
            return Step(waiting=True)
        if outcome.rate_limited and call.channel:
            method = LIMITED_BY.get(call.action, "chat.postMessage")
            return rate_limited(session, delivery, call.channel, method, outcome.retry_after, now)
        problem = failed(
            session, delivery, incident, outcome.error, now, outcome.retry_after, call.channel
        )
        problem.in_doubt = outcome.unknown
        return Step(problem=problem)

    def channel_joined(self, channel_id: str, now: datetime | None = None) -> int:
        """The bot was let into `channel_id`: what waits there for that is due now."""
        at = now or datetime.now(UTC)
        with self.sessions.begin() as session:
            waiting = (
                update(Delivery)
                .where(
                    pending(),
                    Delivery.last_error.in_(["not_in_channel", "channel_not_found"]),
                    or_(
                        Delivery.incident_id.in_(
                            select(Incident.id).where(Incident.slack_channel_id == channel_id)
                        ),
                        Delivery.payload["channel"].astext == channel_id,
                    ),
                )
                .values(next_attempt_at=at)
                .execution_options(synchronize_session=False)
            )
            count = session.execute(waiting).rowcount
        if count:
            log.info("joined %s: %d waiting update(s) due now", channel_id, count)
            self.wake()
        return count

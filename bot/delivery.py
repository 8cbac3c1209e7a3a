"""The outbox worker: sends queued Slack side effects (card posts and edits, thread replies).

Rows are written by the domain in the same transaction as the change they report, so a change is
never lost when Slack fails: the row stays, with its error, until a later drain sends it. Rows of
one incident go strictly in order (a later reply never overtakes an earlier one), and each row is
claimed with `FOR UPDATE SKIP LOCKED`, so several workers never send the same row twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackObjectFormationError
from slack_sdk.web import SlackResponse
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot.incidents import format_incident_id
from bot.incidents.screenshots import list_screenshots
from bot.slack import blocks
from db.models import (
    Delivery,
    DeliveryAction,
    EventKind,
    Incident,
    IncidentEvent,
    Severity,
)

log = logging.getLogger(__name__)

# Retrying cannot help: record the failure and stop.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "is_archived",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_blocks",
        "invalid_arguments",
        "no_text",
        "message_not_found",
        "cant_update_message",
        "cant_delete_message",
        "edit_window_closed",
        "card_missing",
    }
)
# A person must fix something (invite the bot, reinstall the app); keep retrying, slowly.
ACTION_NEEDED_ERRORS = frozenset(
    {
        "not_in_channel",
        "missing_scope",
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "restricted_action",
    }
)
MAX_BACKOFF = timedelta(minutes=15)
ACTION_NEEDED_BACKOFF = timedelta(minutes=5)


class _Unsendable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Problem:
    """A delivery that did not go through, in terms a person can act on."""

    incident_ref: str
    channel: str | None
    error: str
    permanent: bool

    @property
    def needs_action(self) -> bool:
        return self.error in ACTION_NEEDED_ERRORS

    def explain(self) -> str:
        where = blocks.channel(self.channel) if self.channel else "its channel"
        if self.error == "not_in_channel":
            return (
                f"I'm not a member of {where}, so I couldn't post {self.incident_ref} there. "
                "Invite me with `/invite @Incident Tracker`; the update is kept and will be "
                "posted once I'm in."
            )
        if self.error == "channel_not_found":
            return (
                f"I can't see {where} (it may be private or deleted), so {self.incident_ref} "
                "has no card there. The incident itself is saved."
            )
        if self.error == "card_missing":
            return f"{self.incident_ref} has no card in Slack, so this update can't be threaded."
        if self.error == "is_archived":
            return f"{where} is archived, so {self.incident_ref} can't be updated there."
        if self.needs_action:
            return (
                f"Slack refused to post {self.incident_ref} ({self.error}); an admin must fix "
                "the app's installation. The update is kept and will be retried."
            )
        outcome = "It was not posted." if self.permanent else "It is kept and will be retried."
        return f"Slack didn't take the update to {self.incident_ref} ({self.error}). {outcome}"


@dataclass
class DrainResult:
    delivered: int = 0
    problems: list[Problem] = field(default_factory=list)


class Deliverer:
    def __init__(self, sessions: sessionmaker[Session], client: WebClient) -> None:
        self.sessions = sessions
        self.client = client

    def drain(
        self, *, incident_id: int | None = None, limit: int = 100, now: datetime | None = None
    ) -> DrainResult:
        """Send due rows (of one incident, or all), oldest first, until none is due."""
        result = DrainResult()
        for _ in range(limit):
            with self.sessions.begin() as session:
                delivery = self._claim(session, incident_id, now or datetime.now(UTC))
                if delivery is None:
                    break
                problem = self._attempt(session, delivery, now or datetime.now(UTC))
            if problem is None:
                result.delivered += 1
            else:
                result.problems.append(problem)
        return result

    def _claim(self, session: Session, incident_id: int | None, now: datetime) -> Delivery | None:
        earlier = aliased(Delivery)
        blocked_by_earlier = exists().where(
            earlier.incident_id == Delivery.incident_id,
            earlier.id < Delivery.id,
            earlier.delivered_at.is_(None),
            earlier.failed_at.is_(None),
        )
        query = (
            select(Delivery)
            .where(
                Delivery.delivered_at.is_(None),
                Delivery.failed_at.is_(None),
                Delivery.next_attempt_at <= now,
                ~blocked_by_earlier,
            )
            .order_by(Delivery.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=Delivery)
        )
        if incident_id is not None:
            query = query.where(Delivery.incident_id == incident_id)
        return session.scalars(query).first()

    def _attempt(self, session: Session, delivery: Delivery, now: datetime) -> Problem | None:
        incident = session.get(Incident, delivery.incident_id) if delivery.incident_id else None
        delivery.attempts += 1
        try:
            note = self._send(session, delivery, incident)
        except SlackApiError as error:
            code = str(error.response.get("error") or f"http_{error.response.status_code}")
            retry_after = (
                error.response.headers.get("Retry-After") if error.response.headers else None
            )
            return self._failed(delivery, incident, code, now, retry_after)
        except _Unsendable as error:
            return self._failed(delivery, incident, error.code, now, None)
        except SlackObjectFormationError as error:
            # Our rendering broke a Block Kit limit: resending the same thing can't succeed,
            # and the row must not block the incident's later updates.
            log.error("delivery %d: rendering failed: %s", delivery.id, error)
            return self._failed(delivery, incident, "invalid_blocks", now, None)
        except (OSError, TimeoutError) as error:  # connection refused, reset, timed out
            return self._failed(delivery, incident, f"connection: {error}", now, None)
        delivery.delivered_at = now
        delivery.last_error = note
        return None

    def _failed(
        self,
        delivery: Delivery,
        incident: Incident | None,
        code: str,
        now: datetime,
        retry_after: str | None,
    ) -> Problem:
        permanent = code in PERMANENT_ERRORS
        delivery.last_error = code
        if permanent:
            delivery.failed_at = now
        else:
            backoff = min(timedelta(seconds=5 * 2 ** (delivery.attempts - 1)), MAX_BACKOFF)
            if code in ACTION_NEEDED_ERRORS:
                backoff = max(backoff, ACTION_NEEDED_BACKOFF)
            if retry_after and retry_after.strip().isdigit():
                backoff = max(backoff, timedelta(seconds=int(retry_after)))
            delivery.next_attempt_at = now + backoff
        ref = (
            format_incident_id(incident.id)
            if incident
            else str(delivery.payload.get("ref", "the digest"))
        )
        channel = incident.slack_channel_id if incident else delivery.payload.get("channel")
        log.warning(
            "delivery %d (%s) of %s to %s failed: %s (%s)",
            delivery.id,
            delivery.action.value,
            ref,
            channel,
            code,
            "permanent" if permanent else f"retry at {delivery.next_attempt_at:%H:%M:%S}",
        )
        return Problem(incident_ref=ref, channel=channel, error=code, permanent=permanent)

    def _send(self, session: Session, delivery: Delivery, incident: Incident | None) -> str | None:
        """Do what the row says; returns a note when there was nothing to send."""
        if delivery.action == DeliveryAction.POST_DIGEST:
            self.client.chat_postMessage(
                channel=delivery.payload["channel"],
                text=delivery.payload["text"],
                blocks=delivery.payload["blocks"],
                unfurl_links=False,
            )
            return None
        if delivery.action == DeliveryAction.DELETE_CARD:
            try:
                self.client.chat_delete(
                    channel=delivery.payload["channel"], ts=delivery.payload["ts"]
                )
            except SlackApiError as error:
                if error.response.get("error") != "message_not_found":
                    raise
                return "skipped: the card was already gone"
            return None
        if incident is None:
            return "skipped: the incident was deleted"
        channel = incident.slack_channel_id
        match delivery.action:
            case DeliveryAction.POST_CARD:
                if incident.card_ts is not None:
                    return "skipped: the card was already posted"
                response = self._in_channel(
                    channel,
                    lambda: self.client.chat_postMessage(
                        channel=channel,
                        text=blocks.card_text(incident),
                        blocks=blocks.card(incident, list_screenshots(session, incident.id)),
                        unfurl_links=False,
                    ),
                )
                # A plain UPDATE, not the ORM's versioned one: a change committed while the card
                # was being posted must neither fail this write nor be overwritten by it.
                session.execute(
                    update(Incident)
                    .where(Incident.id == incident.id)
                    .values(card_ts=response["ts"])
                    .execution_options(synchronize_session=False)
                )
            case DeliveryAction.UPDATE_CARD:
                if self._later_card_update_pending(session, delivery):
                    return "skipped: a later card update supersedes it"
                self._require_card(incident)
                self._in_channel(
                    channel,
                    lambda: self.client.chat_update(
                        channel=channel,
                        ts=incident.card_ts,
                        text=blocks.card_text(incident),
                        blocks=blocks.card(incident, list_screenshots(session, incident.id)),
                    ),
                )
            case DeliveryAction.POST_THREAD:
                self._require_card(incident)
                event_ids = delivery.payload.get("event_ids") or [delivery.event_id]
                events = session.scalars(
                    select(IncidentEvent)
                    .where(IncidentEvent.id.in_(event_ids))
                    .order_by(IncidentEvent.id)
                ).all()
                if not events:
                    return "skipped: its events are gone"
                broadcast = incident.severity in (Severity.SEV1, Severity.SEV2) and any(
                    e.kind == EventKind.STATUS_CHANGED for e in events
                )
                self._in_channel(
                    channel,
                    lambda: self.client.chat_postMessage(
                        channel=channel,
                        thread_ts=incident.card_ts,
                        text=blocks.thread_text(events),
                        blocks=blocks.thread_blocks(incident, events),
                        reply_broadcast=broadcast,
                        unfurl_links=False,
                        unfurl_media=False,
                    ),
                )
        return None

    def _in_channel(self, channel: str | None, call: Callable[[], SlackResponse]) -> SlackResponse:
        """Make `call`; if the bot is not in the channel, join it (public only) and retry once."""
        try:
            return call()
        except SlackApiError as error:
            if error.response.get("error") != "not_in_channel":
                raise
            try:
                self.client.conversations_join(channel=channel)
            except SlackApiError as join_error:
                # Private channels can't be joined: a person must invite the bot. Report the
                # original not_in_channel, which says exactly that.
                log.info("could not join %s: %s", channel, join_error.response.get("error"))
                raise error from None
            return call()

    @staticmethod
    def _require_card(incident: Incident) -> None:
        if incident.card_ts is None:
            # Only reachable when the card post failed for good (rows are sent in order).
            raise _Unsendable("card_missing")

    @staticmethod
    def _later_card_update_pending(session: Session, delivery: Delivery) -> bool:
        return bool(
            session.scalar(
                select(
                    exists().where(
                        Delivery.incident_id == delivery.incident_id,
                        Delivery.id > delivery.id,
                        Delivery.action == DeliveryAction.UPDATE_CARD,
                        Delivery.delivered_at.is_(None),
                        Delivery.failed_at.is_(None),
                    )
                )
            )
        )


def undelivered(session: Session, incident_id: int) -> list[str]:
    """What Slack refused of an incident's updates, oldest first, and whether it is retried."""
    return [
        f"{error or 'unknown error'} ({'gave up' if failed else 'will retry'})"
        for error, failed in session.execute(
            select(Delivery.last_error, Delivery.failed_at)
            .where(
                Delivery.incident_id == incident_id,
                Delivery.delivered_at.is_(None),
                Delivery.last_error.is_not(None),
            )
            .order_by(Delivery.id)
        )
    ]

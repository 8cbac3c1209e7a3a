"""What a person is told after the ack, as an outbox row: a refusal, a confirmation, what became
of a change's Slack updates.

A row is written in the transaction of the change it confirms; a refusal, which commits nothing
else, gets a short transaction of its own before the ack. Either way a bot that dies right
after the ack still tells the person once it is back.

- Where: an answer to the request's `response_url`, an ephemeral message in the channel the
  person acted in, or else a DM from the app. An ephemeral message or a response_url answer
  can't be looked up afterwards, and a response_url stops working after 30 minutes (or 5 uses):
  such a row lives for TTL and is dropped, logged, past it, never sent late. A DM is a post like
  any other, tagged with its row id, so a lost answer is looked up in the DM; it does not expire.
- An ephemeral message Slack can't show there (the person or the bot is not in the channel)
  becomes a DM.
- Each person is their own place (bot.delivery.order): what they are told comes in order and
  waits for nothing of an incident's card or channel, nor holds those up.
- A person Slack says is gone (deactivated, unknown, a bot) is given up on at once.
- A DM the domain queues about an incident's events (bot.incidents.recording.dm_later: a role's
  duties, a subscriber's copy of a change, a nudge) has no text: it is worded when it is sent,
  from the events and the incident as they are then; one whose events are gone is skipped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.incidents import ACTIVE_STATUSES, followups, format_incident_id, progress
from bot.incidents.followups.rules import DM_FOLLOWUP_ASSIGNED, DM_FOLLOWUP_DIGEST
from bot.incidents.recording import DM_NUDGE, DM_ROLE, DM_SUBSCRIBER
from bot.slack import blocks
from bot.slack.blocks.coordination import web_page
from db.models import Delivery, DeliveryAction, FollowUp, FollowUpStatus, Incident, IncidentEvent

from .calls import CardStyle, SlackCall, Unsendable, delivery_ref, tag
from .problems import Problem

log = logging.getLogger(__name__)

# Slack's response_url lifetime; an ephemeral message later than this answers nothing anyone
# still waits for.
TTL = timedelta(minutes=30)
EPHEMERAL, RESPONSE_URL, DM = "ephemeral", "response_url", "dm"
EXPIRED = "expired"
# The person, not the bot, is gone or can't be written to: telling them again can't succeed.
GONE_PERSON_ERRORS = frozenset(
    {"account_inactive", "user_not_found", "user_disabled", "user_not_visible", "cannot_dm_bot"}
)
# Slack can't show an ephemeral message in that channel, but a DM reaches the person.
DM_INSTEAD_ERRORS = frozenset(
    {"user_not_in_channel", "not_in_channel", "channel_not_found", "is_archived"}
)


@dataclass(frozen=True)
class Recipient:
    """Whom to tell, and where: the request's response_url, else ephemeral in `channel_id`,
    else a DM. `replace_original` replaces the message a response_url belongs to."""

    user_id: str
    channel_id: str | None = None
    response_url: str | None = None
    replace_original: bool = False


def queue_tell(
    session: Session,
    to: Recipient,
    text: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    incident_id: int | None = None,
    now: datetime | None = None,
) -> Delivery:
    """Add the row telling `to` the (mrkdwn) `text` to the caller's transaction.

    `incident_id` is what it is about, for the log and to send it first when that incident is
    severe; the row is still ordered per person, not per incident."""
    at = now or datetime.now(UTC)
    payload: dict[str, Any] = {"user": to.user_id, "text": text}
    if blocks:
        payload["blocks"] = blocks
    if to.response_url:
        payload.update(via=RESPONSE_URL, url=to.response_url, replace=to.replace_original)
    elif to.channel_id:
        payload.update(via=EPHEMERAL, channel=to.channel_id)
    else:
        payload["via"] = DM
    if payload["via"] != DM:
        payload["expires_at"] = (at + TTL).isoformat()
    # Kept for the log beyond the incident's deletion (or instead of it: not "the digest").
    payload["ref"] = format_incident_id(incident_id) if incident_id else "no incident"
    row = Delivery(
        incident_id=incident_id,
        action=DeliveryAction.TELL_USER,
        payload=payload,
        next_attempt_at=at,
    )
    session.add(row)
    session.flush()
    return row


def expire(delivery: Delivery, incident: Incident | None, now: datetime) -> Problem | None:
    """Past its time to live, the row is given up unsent (its URL is dead, or no one waits)."""
    expires_at = delivery.payload.get("expires_at")
    if expires_at is None or datetime.fromisoformat(expires_at) > now:
        return None
    delivery.failed_at, delivery.last_error = now, EXPIRED
    ref = delivery_ref(delivery, incident)
    log.info(
        "delivery %d (tell_user) of %s to %s by %s: expired unsent, queued at %s",
        delivery.id,
        ref,
        delivery.payload["user"],
        delivery.payload["via"],
        f"{delivery.created_at:%H:%M:%S}",
    )
    return Problem(ref, delivery.payload.get("channel"), EXPIRED, permanent=True, telling=True)


def call_for(
    session: Session, delivery: Delivery, incident: Incident | None, cards: CardStyle
) -> SlackCall | str:
    """The row's call, or a note when there is nothing to send; a DM's channel is opened when
    it is sent (`open_dm`). A DM about an incident's events is worded now, from them."""
    payload = delivery.payload
    if "text" in payload:
        message = {"text": payload["text"], "blocks": payload.get("blocks")}
    else:
        rendered = _render(session, delivery, incident, cards)
        if isinstance(rendered, str):
            return rendered
        message = {"text": rendered[0], "blocks": rendered[1]}
    via = payload["via"]
    if via == RESPONSE_URL:
        method, channel = RESPONSE_URL, None
        kwargs = {**message, "url": payload["url"], "replace_original": payload["replace"]}
    elif via == EPHEMERAL:
        method, channel = "chat.postEphemeral", payload["channel"]
        kwargs = {**message, "channel": channel, "user": payload["user"]}
    else:
        # Addressed to the person until `open_dm` finds the DM's own id.
        method, channel = "chat.postMessage", payload["user"]
        kwargs = {
            **message,
            "channel": channel,
            "unfurl_links": False,
            "metadata": tag(delivery.id),
        }
    ref = delivery_ref(delivery, incident)
    return SlackCall(
        delivery.id, delivery.action, method, channel, kwargs, delivery.incident_id, ref
    )


def _render(
    session: Session, delivery: Delivery, incident: Incident | None, cards: CardStyle
) -> tuple[str, list[Any]] | str:
    """A DM queued by the domain (bot.incidents.recording.dm_later) with no text: a role's
    duties, a subscriber's copy of a change, a nudge to post the promised update; a follow-up's
    owner told it is theirs, or of their overdue ones (bot.incidents.followups)."""
    about = delivery.payload.get("about")
    if about == DM_FOLLOWUP_DIGEST:
        return _followup_digest(session, delivery)
    if incident is None:
        return "skipped: the incident was deleted"
    event_ids = delivery.payload.get("event_ids") or []
    events = list(
        session.scalars(
            select(IncidentEvent).where(IncidentEvent.id.in_(event_ids)).order_by(IncidentEvent.id)
        )
    )
    if about == DM_FOLLOWUP_ASSIGNED:
        return _followup_assigned(session, delivery, incident, cards)
    if not events:
        return "skipped: its events are gone"
    if about == DM_ROLE:
        return blocks.role_dm(incident, events[-1], cards.role_rules, cards.public_url)
    if about == DM_SUBSCRIBER:
        told = blocks.subscriber_dm(incident, events, cards.public_url)
        return told or "skipped: nothing a subscriber is told"
    if about == DM_NUDGE:
        if incident.status not in ACTIVE_STATUSES:
            return "skipped: the incident is no longer active"
        latest = progress.latest_update(session, incident.id)
        if latest is not None and latest.id > events[-1].id:
            return "skipped: the update came"
        raw = events[-1].details.get("next_update_at")
        due = datetime.fromisoformat(raw) if raw else incident.next_update_at
        return blocks.nudge_dm(incident, due)
    raise Unsendable("unknown_dm")


def _followup_assigned(
    session: Session, delivery: Delivery, incident: Incident, cards: CardStyle
) -> tuple[str, list[Any]] | str:
    followup = session.get(FollowUp, delivery.payload.get("followup_id"))
    if followup is None:
        return "skipped: the follow-up is gone"
    if followup.owner != delivery.payload.get("user"):
        return "skipped: the follow-up has another owner now"
    if followup.status != FollowUpStatus.OPEN:
        return "skipped: the follow-up is no longer open"
    page = web_page(cards.public_url, incident.id)
    return blocks.followup_assigned_dm(followup, incident, datetime.now(UTC).date(), page)


def _followup_digest(session: Session, delivery: Delivery) -> tuple[str, list[Any]] | str:
    """The owner's overdue follow-ups, as they are now (done since: left out)."""
    ids = [i for i in delivery.payload.get("followup_ids") or [] if isinstance(i, int)]
    today = datetime.now(UTC).date()
    found = session.scalars(select(FollowUp).where(FollowUp.id.in_(ids)).order_by(FollowUp.due_on))
    owner = delivery.payload.get("user")
    overdue = [f for f in found if f.owner == owner and followups.is_overdue(f, today)]
    if not overdue:
        return "skipped: nothing overdue any more"
    return blocks.followup_digest_dm(overdue, today)


def open_dm(client: WebClient, call: SlackCall) -> None:
    """The DM's own channel (conversations.open is safe to repeat): posted to, and looked in for
    an earlier post of this row whose answer was lost."""
    assert call.channel is not None
    channel = client.conversations_open(users=call.channel)["channel"]["id"]
    call.channel = call.kwargs["channel"] = channel


def answer(call: SlackCall, timeout: int) -> str | None:
    """POST to the response_url; None when Slack took it, else why not."""
    kwargs = call.kwargs
    response = WebhookClient(kwargs["url"], timeout=timeout).send(
        text=kwargs["text"], blocks=kwargs["blocks"], replace_original=kwargs["replace_original"]
    )
    if response.status_code == 200:
        return None
    try:
        error = json.loads(response.body).get("error")
    except (ValueError, AttributeError):
        error = response.body.strip()[:40] or None
    return f"http_{response.status_code}" if response.status_code >= 500 else error or "used_url"


def gives_up(delivery: Delivery, code: str, channel: str | None) -> bool:
    """Whether a refusal ends the row: the person is gone, or the response_url is spent (any
    answer but a 5xx or a rate limit)."""
    via = delivery.payload.get("via")
    if code == "account_inactive":
        # Also what every call gets once the bot's own token is deactivated, which an admin can
        # fix: it is the person's only on a post into the DM that the token just opened.
        return via == DM and channel not in (None, delivery.payload["user"])
    if code in GONE_PERSON_ERRORS:
        return True
    transient = code.startswith(("http_5", "connection")) or code in ("http_429", "ratelimited")
    return via == RESPONSE_URL and not transient


def dm_instead(delivery: Delivery, code: str, now: datetime) -> bool:
    """An ephemeral message Slack can't show in that channel becomes a DM, due at once (False
    for any other row)."""
    if delivery.payload.get("via") != EPHEMERAL or code not in DM_INSTEAD_ERRORS:
        return False
    payload = {k: v for k, v in delivery.payload.items() if k not in ("channel", "expires_at")}
    delivery.payload = {**payload, "via": DM}
    delivery.last_error, delivery.next_attempt_at = code, now
    log.info(
        "delivery %d (tell_user) to %s: no ephemeral message possible (%s); a DM instead",
        delivery.id,
        payload["user"],
        code,
    )
    return True

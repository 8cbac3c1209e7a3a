"""From an outbox row to the Slack call it asks for, and the tag that finds a post again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot.incidents import followups, format_incident_id, progress, roles
from bot.incidents.roles import RoleRules
from bot.incidents.screenshots import list_screenshots
from bot.slack import blocks
from db.models import Delivery, DeliveryAction, EventKind, Incident, IncidentEvent, Severity

TAG_EVENT_TYPE = "incident_tracker_delivery"
# Looking can't work until a person acts (scopes, membership): post rather than wait forever.
BLIND_LOOKUP_ERRORS = frozenset(
    {"missing_scope", "not_in_channel", "channel_not_found", "thread_not_found", "not_allowed"}
)
# Not one Slack method: the pinned summary's edit and the topic, as one row.
REFRESH = "channel.refresh"
ARCHIVE = "conversations.archive"
INVITE = "conversations.invite"
RENAME = "conversations.rename"
# Calls that must not happen twice: their outcome, when unknown, is looked up before a retry.
ONCE_ONLY = frozenset({"chat.postMessage", "conversations.create"})
# The welcome message's link to the card, made a permalink just before it is sent
# (bot.delivery.channels.link_card): where the card is, the block, its text with the link.
CARD_LINK = "card_link"
# How far before a post's start its message is looked for (clocks differ a little).
LOOKUP_SLACK = timedelta(minutes=1)
LOOKUP_PAGES = 5


def tag(delivery_id: int) -> dict[str, Any]:
    """The message metadata that marks a post as this outbox row's."""
    return {"event_type": TAG_EVENT_TYPE, "event_payload": {"delivery_id": delivery_id}}


class Unsendable(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class CardStyle:
    """How cards look: an "Open channel" button for incidents without a channel (INCIDENT_CHANNELS
    is not `never`), a link to the incident's web page (PUBLIC_URL), the roles people hold
    (INCIDENT_ROLES)."""

    offer_channel: bool = False
    public_url: str | None = None
    role_rules: RoleRules = field(default_factory=RoleRules)
    # FOLLOWUP_TRACKER: the follow-ups on the card get Export buttons.
    tracker: str | None = None


def delivery_ref(delivery: Delivery, incident: Incident | None) -> str:
    """What a row is about, for logs and people: the incident's id, or the digest."""
    if incident is not None:
        return format_incident_id(incident.id)
    return str(delivery.payload.get("ref", "the digest"))


@dataclass
class SlackCall:
    """One Slack call prepared from a row (rendered inside its transaction, made after it)."""

    delivery_id: int
    action: DeliveryAction
    method: str
    channel: str | None
    kwargs: dict[str, Any]
    incident_id: int | None
    ref: str
    # Set for posts: when this post (or an earlier one of the same row) started.
    sending_since: datetime | None = None
    look_first: bool = False


def pending() -> Any:
    return Delivery.delivered_at.is_(None) & Delivery.failed_at.is_(None)


def prepare(
    session: Session,
    delivery: Delivery,
    incident: Incident | None,
    cards: CardStyle,
    now: datetime | None = None,
) -> SlackCall | str:
    """The Slack call a row asks for, or a note when there is nothing to send."""
    ref = delivery_ref(delivery, incident)
    now = now or datetime.now(UTC)

    def card() -> list[Any]:
        assert incident is not None
        return blocks.card(
            incident,
            list_screenshots(session, incident.id),
            offer_channel=cards.offer_channel,
            public_url=cards.public_url,
            roles=roles.holders(session, incident, cards.role_rules),
            latest=progress.latest_update(session, incident.id),
            now=now,
            followups=followups.followups_of(session, incident.id),
            tracker=cards.tracker,
        )

    def post_card(channel: str | None) -> SlackCall:
        assert incident is not None
        return call(
            "chat.postMessage",
            channel,
            text=blocks.card_text(incident),
            blocks=card(),
            unfurl_links=False,
            metadata=tag(delivery.id),
        )

    def call(method: str, channel: str | None, **kwargs: Any) -> SlackCall:
        return SlackCall(
            delivery.id,
            delivery.action,
            method,
            channel,
            {"channel": channel, **kwargs},
            delivery.incident_id,
            ref,
        )

    if delivery.action == DeliveryAction.POST_DIGEST:
        return call(
            "chat.postMessage",
            delivery.payload["channel"],
            text=delivery.payload["text"],
            blocks=delivery.payload["blocks"],
            unfurl_links=False,
            metadata=tag(delivery.id),
        )
    if delivery.action == DeliveryAction.DELETE_CARD:
        return call("chat.delete", delivery.payload["channel"], ts=delivery.payload["ts"])
    if incident is None:
        return "skipped: the incident was deleted"
    channel = incident.slack_channel_id
    match delivery.action:
        case DeliveryAction.POST_CARD:
            if incident.card_ts is not None:
                return "skipped: the card was already posted"
            return post_card(channel)
        case DeliveryAction.UPDATE_CARD:
            if _later_pending(session, delivery):
                return "skipped: a later card update supersedes it"
            _require_card(incident)
            return call(
                "chat.update",
                channel,
                ts=incident.card_ts,
                text=blocks.card_text(incident),
                blocks=card(),
            )
        case DeliveryAction.OPEN_CHANNEL:
            if incident.own_channel_id is not None:
                return "skipped: the channel is open"
            return call(
                "conversations.create",
                None,
                name=delivery.payload["name"],
                is_private=delivery.payload.get("private", False),
                invite=delivery.payload.get("invite", []),
            )
        case DeliveryAction.POST_SUMMARY:
            room = _require_own_channel(incident)
            if incident.own_channel_summary_ts is not None:
                return "skipped: the summary is posted"
            return post_card(room)
        case DeliveryAction.POST_WELCOME:
            room = _require_own_channel(incident)
            if incident.own_channel_welcome_ts is not None:
                return "skipped: the welcome is posted"
            return call(
                "chat.postMessage",
                room,
                **welcome(session, incident, cards),
                unfurl_links=False,
                unfurl_media=False,
                metadata=tag(delivery.id),
            )
        case DeliveryAction.UPDATE_CHANNEL:
            room = _require_own_channel(incident)
            if _later_pending(session, delivery):
                return "skipped: a later update supersedes it"
            summary = incident.own_channel_summary_ts and {
                "channel": room,
                "ts": incident.own_channel_summary_ts,
                "text": blocks.card_text(incident),
                "blocks": card(),
            }
            greeting = incident.own_channel_welcome_ts and {
                "channel": room,
                "ts": incident.own_channel_welcome_ts,
                **welcome(session, incident, cards),
            }
            topic = blocks.channel_topic(incident)
            if topic == incident.own_channel_topic:
                topic = None
            if not summary and not topic and not greeting:
                return "skipped: nothing to change"
            return call(REFRESH, room, summary=summary, topic=topic, welcome=greeting)
        case DeliveryAction.RENAME_CHANNEL:
            room = _require_own_channel(incident)
            if _later_pending(session, delivery):
                return "skipped: a later rename supersedes it"
            return call(RENAME, room, name=delivery.payload["name"])
        case DeliveryAction.INVITE_CHANNEL:
            room = _require_own_channel(incident)
            return call(INVITE, room, invite=delivery.payload.get("invite", []))
        case DeliveryAction.ARCHIVE_CHANNEL:
            room = _require_own_channel(incident)
            if incident.own_channel_archived_at is not None:
                return "skipped: the channel is archived"
            return call(ARCHIVE, room)
        case DeliveryAction.POST_CHANNEL:
            room = _require_own_channel(incident)
            shown: list[Any] | None = None
            if "say" in delivery.payload:  # the bot's own line, not a change's reply
                text = blocks.channel_line(incident, delivery.payload)
            else:
                events = _posted(session, delivery)
                if isinstance(events, str):
                    return events
                text = blocks.thread_text(events, cards.role_rules)
                shown = blocks.thread_blocks(incident, events, cards.role_rules)
            return call(
                "chat.postMessage",
                room,
                text=text,
                blocks=shown,
                unfurl_links=False,
                unfurl_media=False,
                metadata=tag(delivery.id),
            )
        case DeliveryAction.POST_THREAD:
            _require_card(incident)
            events = _posted(session, delivery)
            if isinstance(events, str):
                return events
            broadcast = incident.severity in (Severity.SEV1, Severity.SEV2) and any(
                e.kind == EventKind.STATUS_CHANGED
                or (e.kind == EventKind.STATUS_UPDATE and e.field == "status")
                for e in events
            )
            return call(
                "chat.postMessage",
                channel,
                thread_ts=incident.card_ts,
                text=blocks.thread_text(events, cards.role_rules),
                blocks=blocks.thread_blocks(incident, events, cards.role_rules),
                reply_broadcast=broadcast,
                unfurl_links=False,
                unfurl_media=False,
                metadata=tag(delivery.id),
            )
    raise AssertionError(f"unknown delivery action {delivery.action}")


def welcome(session: Session, incident: Incident, cards: CardStyle) -> dict[str, Any]:
    """The welcome message's text and blocks (as sent: dicts, so its link to the card can be
    made the card's permalink when it is sent), and where that card is."""
    holders = roles.holders(session, incident, cards.role_rules)
    text, shown = blocks.welcome(incident, holders, public_url=cards.public_url)
    message: dict[str, Any] = {"text": text, "blocks": [b.to_dict() for b in shown]}
    if incident.slack_channel_id and incident.card_ts:
        message[CARD_LINK] = {
            "channel": incident.slack_channel_id,
            "ts": incident.card_ts,
            "block_id": blocks.WELCOME_LINKS,
            "text": blocks.welcome_links(incident, cards.public_url, blocks.CARD_LINK_MARK),
        }
    return message


def find_tagged(client: WebClient, call: SlackCall) -> str | None:
    """The ts of this row's message if Slack has it: in the card's thread for a reply, in the
    channel's recent history for a card or digest."""
    assert call.sending_since is not None
    oldest = f"{(call.sending_since - LOOKUP_SLACK).timestamp():.6f}"
    thread_ts = call.kwargs.get("thread_ts")
    cursor = None
    for _ in range(LOOKUP_PAGES):
        if thread_ts:
            page = client.conversations_replies(
                channel=call.channel,
                ts=thread_ts,
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        else:
            page = client.conversations_history(
                channel=call.channel,
                oldest=oldest,
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
        for message in page.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == TAG_EVENT_TYPE
                and payload.get("delivery_id") == call.delivery_id
            ):
                return message.get("ts")
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _events(session: Session, delivery: Delivery) -> list[IncidentEvent]:
    event_ids = delivery.payload.get("event_ids") or [delivery.event_id]
    return list(
        session.scalars(
            select(IncidentEvent).where(IncidentEvent.id.in_(event_ids)).order_by(IncidentEvent.id)
        )
    )


def _posted(session: Session, delivery: Delivery) -> list[IncidentEvent] | str:
    """The row's events that a reply shows, or why there is no reply."""
    events = _events(session, delivery)
    if not events:
        return "skipped: its events are gone"
    shown = blocks.posted(events)
    return shown or "skipped: not posted (the card shows it)"


def _later_pending(session: Session, delivery: Delivery) -> bool:
    """A later edit of the same kind will show everything this one would: skip this one."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Delivery.incident_id == delivery.incident_id,
                    Delivery.id > delivery.id,
                    Delivery.action == delivery.action,
                    pending(),
                )
            )
        )
    )


def _require_own_channel(incident: Incident) -> str:
    if incident.own_channel_id is None:
        # Only reachable when opening the channel failed for good (rows are sent in order).
        raise Unsendable("channel_missing")
    return incident.own_channel_id


def _require_card(incident: Incident) -> None:
    if incident.card_ts is None:
        # Only reachable when the card post failed for good (rows are sent in order).
        raise Unsendable("card_missing")

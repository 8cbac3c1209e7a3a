"""Opening an incident's own channel: never two for one incident, people invited one way or
another, nobody's refusal failing the rest."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.incidents import format_incident_id
from bot.incidents.channels import NAME_MAX, USER_GROUP_ID, say_in_channel
from bot.slack.blocks import CARD_LINK_MARK, safe_url
from db.models import Delivery, DeliveryAction, Incident

from .calls import ARCHIVE, CARD_LINK, INVITE, REFRESH, RENAME, SlackCall, Unsendable

log = logging.getLogger(__name__)

_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")
# Who could not be invited, and Slack's reason.
Skipped = list[tuple[str, str]]
# What a channel call changed: the channel's new name, and who could not be invited.
Changed = tuple[str | None, Skipped]
# A name taken by a channel that is not the bot's gets a suffix: -2, -3, ...
SUFFIXES = ("", *(f"-{n}" for n in range(2, 10)))
OWN_CHANNEL_PAGES = 20


def open_channel(client: WebClient, call: SlackCall) -> tuple[str, str, Skipped]:
    """Create the channel the row names, or adopt the one an earlier attempt created (its answer
    lost, or the bot killed before recording it); then invite. Returns its id, its name and who
    could not be invited."""
    name = call.kwargs["name"]
    found = _own_channel(client, name) if call.look_first else None
    if found is None:
        found = _create(client, name, bool(call.kwargs.get("is_private")))
    channel_id, actual = found
    invited = _invite(client, channel_id, call.kwargs.get("invite") or [], call.ref)
    return channel_id, actual, invited


def _create(client: WebClient, name: str, private: bool) -> tuple[str, str]:
    for suffix in SUFFIXES:
        candidate = name[: NAME_MAX - len(suffix)].rstrip("-_") + suffix
        try:
            created = client.conversations_create(name=candidate, is_private=private)
        except SlackApiError as error:
            if error.response.get("error") != "name_taken":
                raise
            own = _own_channel(client, candidate)
            if own is not None:  # made by an earlier attempt of this row
                return own
            continue  # somebody else's channel
        return created["channel"]["id"], created["channel"]["name"]
    raise Unsendable("name_taken")


def _own_channel(client: WebClient, name: str) -> tuple[str, str] | None:
    """A channel called `name` among those the bot is in (it is in every channel it made)."""
    cursor = None
    for _ in range(OWN_CHANNEL_PAGES):
        page = client.users_conversations(
            types="public_channel,private_channel", limit=200, cursor=cursor
        )
        for channel in page.get("channels") or []:
            if channel.get("name") == name:
                return channel["id"], name
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    return None


def _invite(client: WebClient, channel_id: str, wanted: list[str], ref: str) -> Skipped:
    """Invite people and user groups' members; whoever can't be invited is skipped, and returned
    with Slack's reason."""
    skipped: Skipped = []
    users: list[str] = []
    for who in wanted:
        if not USER_GROUP_ID.match(who):
            users.append(who)
            continue
        try:
            users += client.usergroups_users_list(usergroup=who).get("users") or []
        except SlackApiError as error:
            log.warning("%s: user group %s not invited: %s", ref, who, _code(error))
            skipped.append((who, _code(error)))
    users = list(dict.fromkeys(users))
    refusals: list[dict[str, Any]] = []
    if users:
        try:
            answer: Any = client.conversations_invite(
                channel=channel_id, users=",".join(users), force=True
            )
            refusals = answer.get("errors") or []
        except SlackApiError as error:
            refusals = error.response.get("errors") or [
                {"user": u, "error": _code(error)} for u in users
            ]
    for refusal in refusals:
        if refusal.get("error") not in ("already_in_channel", "cant_invite_self"):
            log.info("%s: %s not invited: %s", ref, refusal.get("user"), refusal.get("error"))
            skipped.append((str(refusal.get("user")), str(refusal.get("error"))))
    return skipped


def record_opened(
    session: Session, incident: Incident, channel_id: str, name: str, now: datetime
) -> None:
    """Keep the channel (a plain UPDATE, as for the card's ts) and link it from the card."""
    session.execute(
        update(Incident)
        .where(Incident.id == incident.id)
        .values(own_channel_id=channel_id, own_channel_name=name)
        .execution_options(synchronize_session=False)
    )
    session.add(
        Delivery(incident_id=incident.id, action=DeliveryAction.UPDATE_CARD, next_attempt_at=now)
    )
    log.info("%s: its channel #%s (%s) is open", format_incident_id(incident.id), name, channel_id)


def record_channel_call(
    session: Session,
    incident: Incident,
    call: SlackCall,
    ts: str | None,
    name: str | None,
    now: datetime,
) -> None:
    """Keep what Slack now shows: the card's ts, the pinned summary's and the welcome's, the
    topic last set. A plain UPDATE, not the ORM's versioned one: a change committed while the
    card was being posted must neither fail this write nor be overwritten by it."""
    values: dict[str, object] = {}
    if call.action == DeliveryAction.POST_CARD:
        values["card_ts"] = ts
    if call.action == DeliveryAction.ARCHIVE_CHANNEL:
        values["own_channel_archived_at"] = now
    if call.action == DeliveryAction.POST_SUMMARY and ts:
        values["own_channel_summary_ts"] = ts
    if call.action == DeliveryAction.POST_WELCOME and ts:
        values["own_channel_welcome_ts"] = ts
    if call.action == DeliveryAction.RENAME_CHANNEL and name:
        values["own_channel_name"] = name
    if call.action == DeliveryAction.UPDATE_CHANNEL and call.kwargs.get("topic"):
        values["own_channel_topic"] = call.kwargs["topic"]
    if values:
        session.execute(
            update(Incident)
            .where(Incident.id == incident.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def rename(client: WebClient, call: SlackCall) -> Changed:
    """The channel's new name; `-2`... when another channel has it. Returns the name it got."""
    wanted = call.kwargs["name"]
    for suffix in SUFFIXES:
        candidate = wanted[: NAME_MAX - len(suffix)].rstrip("-_") + suffix
        try:
            renamed = client.conversations_rename(channel=call.channel, name=candidate)
            return renamed["channel"]["name"], []
        except SlackApiError as error:
            if _code(error) != "name_taken":
                raise
            if (_own_channel(client, candidate) or ("", ""))[0] == call.channel:
                return candidate, []  # it has that name already (an earlier attempt)
    raise Unsendable("name_taken")


def invite(client: WebClient, call: SlackCall) -> Changed:
    assert call.channel is not None
    return None, _invite(client, call.channel, call.kwargs.get("invite") or [], call.ref)


def archive(client: WebClient, call: SlackCall) -> Changed:
    try:
        client.conversations_archive(channel=call.channel)
    except SlackApiError as error:
        if _code(error) != "already_archived":
            raise
    return None, []


def post_skipped(session: Session, incident: Incident, skipped: Skipped, now: datetime) -> None:
    """Say in the channel who could not be invited (a post of its own, sent exactly once)."""
    if skipped:
        say_in_channel(session, incident, "not_invited", now, skipped=skipped)


def refresh(client: WebClient, call: SlackCall) -> Changed:
    """Edit the pinned summary and the welcome message, and set the topic when it changed
    (Slack posts a notice for every topic change, so an unchanged one is not set again)."""
    if call.kwargs.get("summary"):
        client.chat_update(**call.kwargs["summary"])
    if call.kwargs.get("welcome"):
        welcome = dict(call.kwargs["welcome"])
        link_card(client, welcome)
        client.chat_update(**welcome)
    if call.kwargs.get("topic"):
        topic = _MENTION.sub(lambda m: "@" + _name(client, m.group(1)), call.kwargs["topic"])
        client.conversations_setTopic(channel=call.channel, topic=topic)
    return None, []


def _name(client: WebClient, user_id: str) -> str:
    """How Slack shows a person: topics don't render mentions, so `<@U…>` would show as is."""
    try:
        user = client.users_info(user=user_id)["user"]
    except SlackApiError as error:
        log.info("no name for %s (%s): the topic shows the id", user_id, _code(error))
        return user_id
    profile = user.get("profile") or {}
    return profile.get("display_name") or profile.get("real_name") or user.get("name") or user_id


# Posts pinned in the incident channel once they are there.
PINNED = frozenset({DeliveryAction.POST_SUMMARY, DeliveryAction.POST_WELCOME})


def before_post(client: WebClient, call: SlackCall) -> None:
    """The welcome message links the card by its permalink (looked up now: a read, safe to
    repeat); the channel's mention stays when Slack can't say."""
    if call.action == DeliveryAction.POST_WELCOME:
        link_card(client, call.kwargs)


def after_post(client: WebClient, call: SlackCall, ts: str | None) -> None:
    """Pin the summary and the welcome message."""
    if call.action in PINNED and ts and call.channel:
        pin(client, call.channel, ts, call.ref)


def link_card(client: WebClient, message: dict[str, Any]) -> None:
    """Replace the welcome's link to the card's channel by the card's own permalink."""
    link = message.pop(CARD_LINK, None)
    if not link:
        return
    try:
        permalink = client.chat_getPermalink(channel=link["channel"], message_ts=link["ts"])
    except SlackApiError as error:
        log.info("no permalink for the card in %s: %s", link["channel"], _code(error))
        return
    url = str(permalink.get("permalink") or "")
    if not safe_url(url):
        return
    for block in message.get("blocks") or []:
        if block.get("block_id") == link["block_id"]:
            block["text"]["text"] = link["text"].replace(CARD_LINK_MARK, url)


def pin(client: WebClient, channel_id: str, ts: str, ref: str) -> None:
    """Pin the summary or the welcome; a refusal is logged, never a reason to post it again."""
    try:
        client.pins_add(channel=channel_id, timestamp=ts)
    except SlackApiError as error:
        if _code(error) != "already_pinned":
            log.warning("%s: message not pinned in %s: %s", ref, channel_id, _code(error))


# The incident channel's calls that are safe to repeat, by the method a row's call names.
CHANNEL_CALLS: dict[str, Callable[[WebClient, SlackCall], Changed]] = {
    ARCHIVE: archive,
    INVITE: invite,
    REFRESH: refresh,
    RENAME: rename,
}


def _code(error: SlackApiError) -> str:
    return str(error.response.get("error") or error.response.status_code)

"""Roles, updates and subscriptions from Slack: `/incident update|role|subscribe|unsubscribe`,
the lead handoff, and the buttons "Update", "I'll lead", "Take <role>", "Subscribe" and
"Unsubscribe". Parse, call one domain function, render."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import incidents
from bot.delivery import Recipient, queue_tell
from bot.incidents import Conflict, IncidentError
from bot.slack import blocks, ids
from bot.slack.blocks.forms import subscription_reply
from bot.slack.grammar import Command
from bot.slack.services import Services

from .common import (
    BUSY,
    Refusal,
    _where,
    as_dict,
    bind,
    deliver_later,
    later,
    press,
    read_metadata,
    read_value,
    save,
    string,
)
from .events import publish_home
from .updating import open_handoff_modal, open_update_modal

log = logging.getLogger(__name__)

COMMANDS = frozenset({"update", "role", "subscribe", "unsubscribe"})


def handles(command: Command) -> bool:
    """The commands answered here: the new ones, and `assign <id> owner`, which is the lead."""
    return command.name in COMMANDS or (command.name == "assign" and command.role == "owner")


def command(
    services: Services, ack: Ack, body: dict[str, Any], client: WebClient, command: Command
) -> bool:
    """Answer the command (True); False for an `assign` that is not a handoff, which
    `/incident assign` makes as before."""
    user_id, channel_id = body["user_id"], body.get("channel_id")
    ref = command.incident or ""
    if command.name == "update":
        _opened(
            ack,
            later(
                services,
                client,
                user_id,
                channel_id,
                open_update_modal,
                body["trigger_id"],
                ref,
                user_id,
                channel_id,
                command.text,
            ),
        )
        return True
    if command.name in {"subscribe", "unsubscribe"}:
        _subscription_command(services, ack, user_id, command)
        return True
    lead = command.name == "assign" or command.role == "lead"
    handed_from = _current_lead(services, ref, user_id) if lead else None
    if handed_from is not None and command.user not in (None, handed_from):
        # Someone else leads: the new lead is handed a summary, asked for in a form.
        _opened(
            ack,
            later(
                services,
                client,
                user_id,
                channel_id,
                open_handoff_modal,
                body["trigger_id"],
                incidents.parse_incident_id(ref),
                command.user,
                user_id,
                channel_id,
            ),
        )
        return True
    if command.name == "assign":
        return False
    actor = services.actor(user_id)

    def give(session: Session) -> tuple[str, int]:
        incident = incidents.assign_role(
            session, ref, command.role, command.user, actor, rules=services.settings.role_rules
        )
        return f"{blocks.ref(incident)} {command.role}: {blocks.user(command.user)}.", incident.id

    try:
        reply, incident_id = save(services, give)
    except Refusal as refusal:
        ack(text=blocks.escape(str(refusal)))
        return True
    ack(text=reply)
    deliver_later(services, client, incident_id, user_id, channel_id)
    return True


def _opened(ack: Ack, queued: bool) -> None:
    """A form opens after the ack; a full work queue is said at once."""
    ack() if queued else ack(text=BUSY)


def _current_lead(services: Services, ref: str, user_id: str) -> str | None:
    """Who leads the incident now, when the caller may change it; None otherwise (the change
    then says why it can't be made)."""
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, ref)
            if not incidents.may_edit(incident, services.actor(user_id)):
                return None
            return incident.owner
    except IncidentError:
        return None


def _subscription_command(services: Services, ack: Ack, user_id: str, command: Command) -> None:
    subscribing = command.name == "subscribe"
    ref = command.incident or ""

    def change(session: Session) -> tuple[int, bool]:
        number = incidents.parse_incident_id(ref)
        if subscribing:
            return number, incidents.subscribe(session, number, user_id)
        return number, incidents.unsubscribe(session, number, user_id)

    try:
        number, changed = save(services, change)
    except Refusal as refusal:
        ack(text=blocks.escape(str(refusal)))
        return
    text, rendered = subscription_reply(number, subscribing, changed)
    ack(text=text, blocks=rendered)


# --- Buttons ---------------------------------------------------------------------------------


def _told_here(body: dict[str, Any]) -> Recipient:
    """Where a button's answer goes: below an ephemeral message (replacing it), ephemeral in
    the channel it was clicked in, or by DM (a DM with the app, the Home tab)."""
    user_id = body["user"]["id"]
    container = as_dict(body.get("container"))
    url = string(body, "response_url")
    if container.get("is_ephemeral") and url:
        return Recipient(user_id, _where(body), url, replace_original=True)
    channel = _where(body)
    if channel and incidents.CHANNEL_ID.match(channel):
        return Recipient(user_id, channel)
    return Recipient(user_id)


def _press(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    client: WebClient,
    change: Callable[[Session, Recipient], int],
) -> None:
    to = _told_here(body)
    incident_id = press(services, ack, lambda session: change(session, to), to)
    if incident_id is not None:
        deliver_later(services, client, incident_id, to.user_id, to.channel_id)


def update_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """ "Update" on the card, in the channel, in a nudge; the reminder's old "Post update"."""
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    later(
        services,
        client,
        user_id,
        channel_id,
        open_update_modal,
        body["trigger_id"],
        read_value(action).get("id"),
        user_id,
        channel_id,
    )


def take_lead_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """ "I'll lead"; a second click (or a late one) is told who leads."""
    ref = read_value(action).get("id")
    actor = services.actor(body["user"]["id"])

    def take(session: Session, to: Recipient) -> int:
        try:
            return incidents.take_lead(session, ref, actor, rules=services.settings.role_rules).id
        except Conflict:
            incident = incidents.get_incident(session, ref)
            if not incident.owner:
                raise
            # Said here, not by the domain's sentence, so that the lead's mention is live.
            text = f"{blocks.user(incident.owner)} already leads {blocks.ref(incident)}."
            queue_tell(session, to, text, incident_id=incident.id)
            return incident.id

    _press(services, ack, body, client, take)


def take_role_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """A welcome message's "take this role": the clicker takes a role nobody holds."""
    key = action["action_id"].split(":", 1)[1]
    if key == "lead":
        take_lead_clicked(services, ack, body, action, client)
        return
    ref = read_value(action).get("id")
    actor = services.actor(body["user"]["id"])
    rules = services.settings.role_rules

    def take(session: Session, to: Recipient) -> int:
        incident = incidents.lock_incident(session, ref)
        held = {
            role.key: (role, holder) for role, holder in incidents.holders(session, incident, rules)
        }
        role, holder = held.get(key, (None, None))
        if role is not None and holder is not None and holder != actor.user_id:
            # A stale button: the role was taken since; taking it from them is `/incident role`.
            text = f"{blocks.user(holder)} is already {role.name} of {blocks.ref(incident)}."
            queue_tell(session, to, text, incident_id=incident.id)
            return incident.id
        incidents.assign_role(session, incident.id, key, actor.user_id, actor, rules=rules)
        return incident.id

    _press(services, ack, body, client, take)


def subscription_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    """Subscribe or Unsubscribe, for whoever clicks: on the card, below a reply, in a DM, on
    the Home tab (which is published again to show it)."""
    subscribing = action["action_id"] == ids.SUBSCRIBE_ACTION
    user_id = body["user"]["id"]
    ref = read_value(action).get("id")
    view = as_dict(body.get("view"))
    on_home = view.get("type") == "home"

    def change(session: Session, to: Recipient) -> int:
        number = incidents.parse_incident_id(ref)
        if subscribing:
            changed = incidents.subscribe(session, number, user_id)
        else:
            changed = incidents.unsubscribe(session, number, user_id)
        if not on_home:
            text, rendered = subscription_reply(number, subscribing, changed)
            blocks_ = [b.to_dict() for b in rendered]
            queue_tell(session, to, text, blocks=blocks_, incident_id=number)
        return number

    to = _told_here(body)
    incident_id = press(services, ack, lambda session: change(session, to), to)
    if incident_id is None:
        return
    if on_home:
        meta = _home_filters(view)
        later(services, client, user_id, None, publish_home, user_id, **meta)
    else:
        deliver_later(services, client, incident_id, user_id, to.channel_id)


def _home_filters(view: dict[str, Any]) -> dict[str, Any]:
    meta = read_metadata(view)
    return {"severity": string(meta, "severity"), "status": string(meta, "status") or "active"}


def register(app: App, services: Services) -> None:
    app.action(ids.UPDATE_ACTION)(bind(services, update_clicked))
    app.action(ids.TAKE_LEAD_ACTION)(bind(services, take_lead_clicked))
    app.action(ids.TAKE_ROLE_ACTION_PATTERN)(bind(services, take_role_clicked))
    app.action(ids.SUBSCRIBE_ACTION)(bind(services, subscription_clicked))
    app.action(ids.UNSUBSCRIBE_ACTION)(bind(services, subscription_clicked))

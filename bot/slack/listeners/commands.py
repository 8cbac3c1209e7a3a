"""`/incident`: a change is saved and confirmed in the ack; reading and forms follow it."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import delivery, incidents, logs
from bot.incidents import Actor, ChannelRules, IncidentError, screenshots
from bot.settings import Settings
from bot.slack import blocks, grammar, ids
from bot.slack.grammar import Command
from bot.slack.services import Services
from db.models import Status

from . import closing, coordination, followups
from .attach import repost_screenshots
from .common import (
    BUSY,
    Refusal,
    bind,
    deliver_later,
    later,
    permalink_of,
    save,
    tell_user,
    unescaped,
)
from .reports import post_postmortem, post_stats

log = logging.getLogger(__name__)

TIMELINE_ENTRIES = 10


# Commands that change an incident: saved before the ack, which carries the confirmation.
CHANGES = {"status", "severity", "note", "assign", "channel"}


def incident_command(
    services: Services, ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient
):
    user_id, channel_id = body["user_id"], body.get("channel_id")

    def implied() -> str | None:
        if not isinstance(channel_id, str) or not incidents.CHANNEL_ID.match(channel_id):
            return None
        with services.sessions() as session:
            found = incidents.incident_in_channel(session, channel_id)
        return incidents.format_incident_id(found) if found else None

    try:
        command = grammar.parse(unescaped(body.get("text")), user_id, implied)
    except IncidentError as error:
        ack(text=blocks.escape(str(error)))
        return
    if command.name == "help":
        ack(text=blocks.help_text(services.settings.role_rules.all))
        return
    if command.incident:  # the grammar checked it is an incident id
        logs.bind(incident_id=incidents.parse_incident_id(command.incident))
    if coordination.handles(command) and coordination.command(services, ack, body, client, command):
        return
    if command.name in followups.COMMANDS:
        followups.command(services, ack, body, client, respond, command)
        return
    if command.name in CHANGES:
        try:
            reply, incident_id = save(
                services,
                lambda session: change(
                    session, command, services.actor(user_id), services.settings
                ),
            )
        except Refusal as refusal:
            if asks_for_resolution(services, client, body, command, refusal):
                ack()
            elif command.name == "status" and command.status == Status.CLOSED:
                rendered = closing.refused_blocks(services, user_id, command.incident, refusal)
                ack(text=blocks.escape(str(refusal)), blocks=rendered)
            else:
                ack(text=blocks.escape(str(refusal)))
            return
        ack(text=reply)
        deliver_later(services, client, incident_id, user_id, channel_id)
        return
    # Reading, rendering and opening forms follow the ack.
    if later(services, client, user_id, channel_id, answer, respond, body, command):
        ack()
    else:
        ack(text=BUSY)


def asks_for_resolution(
    services: Services, client: WebClient, body: dict[str, Any], command: Command, refusal: Refusal
) -> bool:
    """A status command refused for want of a resolution opens the form that asks for it, as
    the card's Resolve button does; False when it can't be opened now."""
    if command.name != "status" or refusal.field != "resolution" or command.status is None:
        return False
    where = (body["user_id"], body.get("channel_id"))
    return resolve_later(
        services, client, body["trigger_id"], command.incident, None, command.status, *where
    )


def resolve_later(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    seen: Status | None,
    target: Status,
    user_id: str,
    channel_id: str | None,
) -> bool:
    """Open the resolve form after the ack; False when the work queue is full."""
    return later(
        services,
        client,
        user_id,
        channel_id,
        open_resolve_modal,
        trigger_id,
        incident_ref,
        seen,
        user_id,
        channel_id,
        target,
    )


def register(app: App, services: Services) -> None:
    app.command(ids.COMMAND)(bind(services, incident_command))


def answer(
    services: Services, client: WebClient, respond: Respond, body: dict[str, Any], command: Command
) -> None:
    user_id, channel_id = body["user_id"], body.get("channel_id")
    try:
        match command.name:
            case "declare":
                open_declare_modal(
                    services, client, body["trigger_id"], user_id, channel_id, command.text
                )
            case "edit":
                with services.sessions() as session:
                    incident = incidents.get_incident(session, command.incident)
                    view = blocks.edit_modal(incident, services.settings.categories)
                client.views_open(trigger_id=body["trigger_id"], view=view)
            case "list":
                with services.sessions() as session:
                    page = incidents.list_incidents(session, command.query)
                    rendered = blocks.incident_list(page, command.text)
                respond(text=blocks.incident_count(page), blocks=rendered)
            case "show":
                respond(**show(services, client, command.incident or "", user_id))
            case "screenshots":
                respond(text="Posting the stored screenshots into the incident's thread…")
                repost_screenshots(services, client, command.incident or "", user_id, channel_id)
            case "postmortem":
                post_postmortem(
                    services, client, respond, command.incident or "", user_id, channel_id
                )
            case "stats":
                post_stats(services, client, respond, command.weeks, user_id, channel_id)
            case "delete":
                with services.sessions() as session:
                    incident = incidents.check_can_delete(
                        session, command.incident, services.actor(user_id)
                    )
                    respond(text="Delete?", blocks=blocks.delete_confirmation(incident))
    except IncidentError as error:
        respond(text=blocks.escape(str(error)))


def change(session: Session, command: Command, actor: Actor, settings: Settings) -> tuple[str, int]:
    """Make the command's change; the confirmation and the incident's id."""
    ref = command.incident or ""
    channels: ChannelRules = settings.channel_rules
    match command.name:
        case "status":
            incident = incidents.change_status(
                session,
                ref,
                command.status,
                actor,
                note=command.text,
                followup_rules=settings.followup_rules,
            )
            return f"{blocks.ref(incident)} is now {incident.status.value}.", incident.id
        case "severity":
            incident = incidents.change_severity(
                session, ref, command.severity, actor, note=command.text
            )
            return f"{blocks.ref(incident)} is now {incident.severity.value}.", incident.id
        case "note":
            event = incidents.add_note(session, ref, actor, command.text)
            return f"Note added to {blocks.ref(event.incident)}.", event.incident_id
        case "assign":
            incident = incidents.assign(session, ref, actor, **{command.role: command.user})
            who = blocks.user(command.user)
            return f"{blocks.ref(incident)} {command.role}: {who}.", incident.id
        case "channel":
            incident = incidents.open_channel(session, ref, actor, channels)
            reply = f"{blocks.ref(incident)} gets its own channel; it opens in a moment."
            return reply, incident.id
    raise AssertionError(f"{command.name} is not a change")


def declare_form_requested(
    services: Services, ack: Ack, body: dict[str, Any], client: WebClient
) -> None:
    """The "Report incident" shortcut and the Home tab's Declare button: the declare form."""
    ack()
    user_id = body["user"]["id"]
    later(services, client, user_id, None, open_declare_modal, body["trigger_id"], user_id, None)


def open_declare_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    user_id: str,
    channel_id: str | None,
    title: str = "",
) -> None:
    settings = services.settings
    client.views_open(
        trigger_id=trigger_id,
        view=blocks.declare_modal(
            categories=settings.categories,
            reporter=user_id,
            channel_id=settings.incident_channel or _real_channel(channel_id),
            title=title,
            origin_channel=channel_id,
            channel_rules=settings.channel_rules,
        ),
    )


def _real_channel(channel_id: str | None) -> str | None:
    # A DM with the app is no place for a card; let the person pick a channel instead.
    return channel_id if channel_id and incidents.CHANNEL_ID.match(channel_id) else None


def show(services: Services, client: WebClient, ref: str, user_id: str) -> dict[str, Any]:
    with services.sessions() as session:
        incident = incidents.get_incident(session, ref)
        events = incidents.timeline(session, incident.id, limit=TIMELINE_ENTRIES)
        undelivered = delivery.undelivered(session, incident.id)
        card_link = permalink_of(client, incident.slack_channel_id, incident.card_ts)
        rendered = blocks.incident_detail(
            incident,
            events,
            services.actor(user_id),
            card_link=card_link,
            undelivered=undelivered,
            screenshots=screenshots.list_screenshots(session, incident.id),
            public_url=services.settings.public_url,
        )
        return {
            "text": f"{blocks.ref(incident)}: {blocks.clip(incident.title, 300)}",
            "blocks": rendered,
        }


def open_resolve_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    seen: Status | None,
    user_id: str,
    channel_id: str | None,
    target: Status = Status.RESOLVED,
) -> None:
    try:
        with services.sessions() as session:
            incident = incidents.get_incident(session, incident_ref)
            incidents.check_as_seen(incident, seen)
            admin = services.actor(user_id).is_admin
            view = blocks.resolve_modal(incident, target, offer_override=admin)
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)

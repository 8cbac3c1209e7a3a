"""Buttons and menus: on cards, in ephemeral lists and details, and on the Home tab."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from sqlalchemy.orm import Session

from bot import incidents
from bot.delivery import Recipient, queue_tell
from bot.incidents import IncidentError, screenshots
from bot.slack import blocks, grammar, ids
from bot.slack.services import Services
from db.models import Status

from . import closing
from .attach import repost_screenshots
from .commands import declare_form_requested, resolve_later
from .common import (
    _below,
    _where,
    as_dict,
    bind,
    deliver_later,
    integer,
    known_status,
    later,
    press,
    read_metadata,
    read_value,
    string,
    tell_user,
)
from .coordination import update_clicked
from .events import publish_home

log = logging.getLogger(__name__)


def status_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    user_id, channel_id = body["user"]["id"], _where(body)
    value = read_value(action)
    target = action["action_id"].split(":", 1)[1]
    seen = known_status(string(value, "status"))
    if target == Status.RESOLVED or (
        target == Status.CLOSED and seen is not None and incidents.resolves(seen, Status.CLOSED)
    ):
        # Resolving asks what fixed it and why: the form opens first, and saves.
        ack()
        where = (user_id, channel_id)
        resolve_later(
            services, client, body["trigger_id"], value.get("id"), seen, Status(target), *where
        )
        return
    incident_id = press(
        services,
        ack,
        lambda session: (
            incidents.change_status(
                session,
                value.get("id"),
                target,
                services.actor(user_id),
                expected_status=seen,
                followup_rules=services.settings.followup_rules,
            ).id
        ),
        Recipient(user_id, channel_id),
        # The close rule's refusal offers an incident admin "Close anyway".
        refused_blocks=(
            (lambda refusal: closing.refused_blocks(services, user_id, value.get("id"), refusal))
            if target == Status.CLOSED
            else None
        ),
    )
    if incident_id is not None:
        deliver_later(services, client, incident_id, user_id, channel_id)


def open_channel_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    user_id = body["user"]["id"]
    incident_id = read_value(action).get("id")
    _press_and_deliver(
        services,
        ack,
        client,
        user_id,
        _where(body),
        lambda session: (
            incidents.open_channel(
                session, incident_id, services.actor(user_id), services.settings.channel_rules
            ).id
        ),
    )


def _press_and_deliver(
    services: Services,
    ack: Ack,
    client: WebClient,
    user_id: str,
    channel_id: str | None,
    change: Callable[[Session], int],
) -> None:
    """A card button's change: saved, acked, its Slack updates sent; a refusal told to the
    person where they clicked."""
    incident_id = press(services, ack, change, Recipient(user_id, channel_id))
    if incident_id is not None:
        deliver_later(services, client, incident_id, user_id, channel_id)


def open_modal_for(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    render: Any,
) -> None:
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    later(
        services,
        client,
        user_id,
        channel_id,
        open_modal,
        body["trigger_id"],
        read_value(action).get("id"),
        render,
        user_id,
        channel_id,
    )


# The reminder's button, in messages already in Slack: its action_id is the card's "Add note".
POST_UPDATE_TEXT = "Post update"


def add_note_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    if string(as_dict(action.get("text")), "text") == POST_UPDATE_TEXT:
        update_clicked(services, ack, body, action, client)
        return
    open_modal_for(services, ack, body, action, client, blocks.note_modal)


def edit_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    open_modal_for(
        services,
        ack,
        body,
        action,
        client,
        lambda incident: blocks.edit_modal(incident, services.settings.categories),
    )


def attach_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    open_modal_for(services, ack, body, action, client, blocks.attach_modal)


def screenshots_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    ack()
    user_id, channel_id = body["user"]["id"], _where(body)
    later(
        services,
        client,
        user_id,
        channel_id,
        repost_screenshots,
        read_value(action).get("id"),
        user_id,
        channel_id,
    )


def delete_screenshot_clicked(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
):
    user_id = body["user"]["id"]
    to = _below(body)

    def delete(session: Session) -> int:
        event = screenshots.delete_screenshot(
            session, integer(read_value(action), "screenshot"), services.actor(user_id)
        )
        ref = incidents.format_incident_id(event.incident_id)
        name = blocks.escape(str(event.details["name"]))
        queue_tell(session, to, f"Deleted {name} from {ref}.", incident_id=event.incident_id)
        return event.incident_id

    incident_id = press(services, ack, delete, to)
    if incident_id is not None:
        deliver_later(services, client, incident_id, user_id, _where(body))


def snooze_clicked(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    user_id, channel_id = body["user"]["id"], _where(body)
    value = read_value(action)
    # A missing or forged length reads as 0 minutes, which the domain refuses.
    minutes = integer(value, "minutes") or 0
    _press_and_deliver(
        services,
        ack,
        client,
        user_id,
        channel_id,
        lambda session: (
            incidents.snooze_reminders(
                session, value.get("id"), services.actor(user_id), timedelta(minutes=minutes)
            ).id
        ),
    )


def list_page_clicked(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: WebClient,
):
    ack()
    user_id = body["user"]["id"]
    later(
        services,
        client,
        user_id,
        _where(body),
        list_page,
        respond,
        read_value(action),
        user_id,
    )


def delete_note_clicked(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
):
    user_id = body["user"]["id"]
    to = _below(body)

    def delete(session: Session) -> int:
        event = incidents.delete_note(
            session, integer(read_value(action), "note"), services.actor(user_id)
        )
        ref = incidents.format_incident_id(event.incident_id)
        queue_tell(session, to, f"Note deleted from {ref}.", incident_id=event.incident_id)
        return event.incident_id

    incident_id = press(services, ack, delete, to)
    if incident_id is not None:
        deliver_later(services, client, incident_id, user_id, _where(body))


def delete_incident_clicked(
    services: Services,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
):
    user_id = body["user"]["id"]
    to = replace(_below(body), replace_original=True)

    def delete(session: Session) -> int:
        number = incidents.parse_incident_id(read_value(action).get("id"))
        title = incidents.delete_incident(session, number, services.actor(user_id))
        ref = incidents.format_incident_id(number)
        # No incident_id: the row would hold a reference to the incident it reports deleted.
        queue_tell(session, to, f"Deleted {ref} ({blocks.escape(title)}).")
        return number

    if press(services, ack, delete, to) is not None:
        deliver_later(services, client, None, user_id, _where(body))


def home_filter_changed(
    services: Services, ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
):
    ack()
    current = read_metadata(as_dict(body.get("view")))
    picked = string(as_dict(action.get("selected_option")), "value")
    severity, status = string(current, "severity"), string(current, "status") or "active"
    if action["action_id"] == ids.HOME_SEVERITY_FILTER:
        severity = None if picked == "any" else picked
    else:
        status = picked or "active"
    user_id = body["user"]["id"]
    later(
        services,
        client,
        user_id,
        None,
        publish_home,
        user_id,
        severity=severity,
        status=status,
    )


def open_card_clicked(services: Services, ack: Ack):
    # A link button: Slack opens the URL, but still tells us, and wants an ack.
    ack()


def register(app: App, services: Services) -> None:
    app.action(ids.STATUS_ACTION_PATTERN)(bind(services, status_clicked))
    app.action(ids.ADD_NOTE_ACTION)(bind(services, add_note_clicked))
    app.action(ids.OPEN_CHANNEL_ACTION)(bind(services, open_channel_clicked))
    app.action(ids.EDIT_ACTION)(bind(services, edit_clicked))
    app.action(ids.ATTACH_ACTION)(bind(services, attach_clicked))
    app.action(ids.SCREENSHOTS_ACTION)(bind(services, screenshots_clicked))
    app.action(ids.DELETE_SCREENSHOT_ACTION)(bind(services, delete_screenshot_clicked))
    app.action(ids.SNOOZE_ACTION_PATTERN)(bind(services, snooze_clicked))
    app.action(ids.LIST_PAGE_ACTION_PATTERN)(bind(services, list_page_clicked))
    app.action(ids.DELETE_NOTE_ACTION)(bind(services, delete_note_clicked))
    app.action(ids.DELETE_INCIDENT_ACTION)(bind(services, delete_incident_clicked))
    app.action(ids.HOME_DECLARE_ACTION)(bind(services, declare_form_requested))
    app.action(ids.HOME_SEVERITY_FILTER)(bind(services, home_filter_changed))
    app.action(ids.HOME_STATUS_FILTER)(bind(services, home_filter_changed))
    app.action("open_card")(bind(services, open_card_clicked))


def open_modal(
    services: Services,
    client: WebClient,
    trigger_id: str,
    incident_ref: object,
    render: Any,
    user_id: str,
    channel_id: str | None,
) -> None:
    try:
        with services.sessions() as session:
            view = render(incidents.get_incident(session, incident_ref))
    except IncidentError as error:
        tell_user(services, user_id, channel_id, blocks.escape(str(error)))
        return
    client.views_open(trigger_id=trigger_id, view=view)


def list_page(
    services: Services, client: WebClient, respond: Respond, value: dict[str, Any], user_id: str
) -> None:
    filters = string(value, "q") or ""
    try:
        query = grammar.parse_list_filters(filters, user_id)
        query.page = integer(value, "page") or 1
        with services.sessions() as session:
            page = incidents.list_incidents(session, query)
            rendered = blocks.incident_list(page, filters)
    except IncidentError as error:
        respond(text=blocks.escape(str(error)), replace_original=False)
        return
    respond(text=blocks.incident_count(page), blocks=rendered, replace_original=True)

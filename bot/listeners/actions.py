"""Buttons and menus: on cards, in ephemeral lists and details, and on the Home tab."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks, commands, incidents, screenshots
from bot import slack_ids as ids
from bot.app import Services
from bot.incidents import IncidentError
from db.models import Status

from .attach import repost_screenshots
from .common import (
    as_dict,
    deliver_and_report,
    integer,
    known_status,
    read_metadata,
    read_value,
    string,
    tell_user,
)
from .events import publish_home

log = logging.getLogger(__name__)


def _where(body: dict[str, Any]) -> str | None:
    return string(as_dict(body.get("channel")), "id") or string(
        as_dict(body.get("container")), "channel_id"
    )


def register(app: App, services: Services) -> None:
    @app.action(ids.STATUS_ACTION_PATTERN)
    def status_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient):
        ack()
        user_id, channel_id = body["user"]["id"], _where(body)
        value = read_value(action)
        target = action["action_id"].split(":", 1)[1]
        seen = known_status(string(value, "status"))
        try:
            if target == Status.RESOLVED:
                # Resolving asks what fixed it and why, so the modal opens first.
                with services.sessions() as session:
                    incident = incidents.get_incident(session, value.get("id"))
                    if seen is not None and incident.status != seen:
                        raise incidents.Conflict(
                            f"{blocks.ref(incident)} changed while you were looking: it is now "
                            f"{incident.status.value}. Nothing was changed."
                        )
                    view = blocks.resolve_modal(incident, Status.RESOLVED)
                client.views_open(trigger_id=body["trigger_id"], view=view)
                return
            with services.sessions.begin() as session:
                incident = incidents.change_status(
                    session,
                    value.get("id"),
                    target,
                    services.actor(user_id),
                    expected_status=seen,
                )
                incident_id = incident.id
        except IncidentError as error:
            tell_user(client, user_id, channel_id, blocks.escape(str(error)))
            return
        deliver_and_report(services, client, incident_id, user_id, channel_id)

    def open_modal_for(
        body: dict[str, Any], action: dict[str, Any], client: WebClient, render: Any
    ) -> None:
        user_id = body["user"]["id"]
        try:
            with services.sessions() as session:
                view = render(incidents.get_incident(session, read_value(action).get("id")))
        except IncidentError as error:
            tell_user(client, user_id, _where(body), blocks.escape(str(error)))
            return
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ids.ADD_NOTE_ACTION)
    def add_note_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient):
        ack()
        open_modal_for(body, action, client, blocks.note_modal)

    @app.action(ids.EDIT_ACTION)
    def edit_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient):
        ack()
        open_modal_for(
            body,
            action,
            client,
            lambda incident: blocks.edit_modal(incident, services.settings.categories),
        )

    @app.action(ids.ATTACH_ACTION)
    def attach_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient):
        ack()
        open_modal_for(body, action, client, blocks.attach_modal)

    @app.action(ids.SCREENSHOTS_ACTION)
    def screenshots_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ):
        ack()
        repost_screenshots(
            services, client, read_value(action).get("id"), body["user"]["id"], _where(body)
        )

    @app.action(ids.DELETE_SCREENSHOT_ACTION)
    def delete_screenshot_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ):
        ack()
        user_id = body["user"]["id"]
        try:
            with services.sessions.begin() as session:
                event = screenshots.delete_screenshot(
                    session, integer(read_value(action), "screenshot"), services.actor(user_id)
                )
                incident_id, name = event.incident_id, str(event.details["name"])
        except IncidentError as error:
            respond(text=blocks.escape(str(error)), replace_original=False)
            return
        respond(
            text=f"Deleted {blocks.escape(name)} from {incidents.format_incident_id(incident_id)}.",
            replace_original=False,
        )
        deliver_and_report(services, client, incident_id, user_id, _where(body))

    @app.action(ids.SNOOZE_ACTION_PATTERN)
    def snooze_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient):
        ack()
        user_id, channel_id = body["user"]["id"], _where(body)
        value = read_value(action)
        minutes = integer(value, "minutes")
        try:
            with services.sessions.begin() as session:
                incident_id = incidents.snooze_reminders(
                    session,
                    value.get("id"),
                    services.actor(user_id),
                    # A missing or forged length reads as 0 minutes, which the domain refuses.
                    timedelta(minutes=minutes or 0),
                ).id
        except IncidentError as error:
            tell_user(client, user_id, channel_id, blocks.escape(str(error)))
            return
        deliver_and_report(services, client, incident_id, user_id, channel_id)

    @app.action(ids.LIST_PAGE_ACTION_PATTERN)
    def list_page_clicked(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond):
        ack()
        value = read_value(action)
        filters = string(value, "q") or ""
        try:
            query = commands.parse_list_filters(filters, body["user"]["id"])
            query.page = integer(value, "page") or 1
            with services.sessions() as session:
                page = incidents.list_incidents(session, query)
                rendered = blocks.incident_list(page, filters)
        except IncidentError as error:
            respond(text=blocks.escape(str(error)), replace_original=False)
            return
        respond(text=f"{page.total} incidents", blocks=rendered, replace_original=True)

    @app.action(ids.DELETE_NOTE_ACTION)
    def delete_note_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ):
        ack()
        user_id = body["user"]["id"]
        value = read_value(action)
        try:
            with services.sessions.begin() as session:
                event = incidents.delete_note(
                    session, integer(value, "note"), services.actor(user_id)
                )
                incident_id = event.incident_id
        except IncidentError as error:
            respond(text=blocks.escape(str(error)), replace_original=False)
            return
        respond(text=f"Note deleted from INC-{incident_id}.", replace_original=False)
        deliver_and_report(services, client, incident_id, user_id, _where(body))

    @app.action(ids.DELETE_INCIDENT_ACTION)
    def delete_incident_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond, client: WebClient
    ):
        ack()
        user_id = body["user"]["id"]
        try:
            number = incidents.parse_incident_id(read_value(action).get("id"))
            with services.sessions.begin() as session:
                title = incidents.delete_incident(session, number, services.actor(user_id))
        except IncidentError as error:
            respond(text=blocks.escape(str(error)), replace_original=True)
            return
        reference = incidents.format_incident_id(number)
        respond(text=f"Deleted {reference} ({blocks.escape(title)}).", replace_original=True)
        deliver_and_report(services, client, None, user_id, _where(body))

    @app.action(ids.HOME_DECLARE_ACTION)
    def home_declare_clicked(ack: Ack, body: dict[str, Any], client: WebClient):
        ack()
        client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.declare_modal(
                categories=services.settings.categories,
                reporter=body["user"]["id"],
                channel_id=services.settings.incident_channel,
            ),
        )

    @app.action(ids.HOME_SEVERITY_FILTER)
    @app.action(ids.HOME_STATUS_FILTER)
    def home_filter_changed(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient
    ):
        ack()
        current = read_metadata(as_dict(body.get("view")))
        picked = string(as_dict(action.get("selected_option")), "value")
        severity, status = string(current, "severity"), string(current, "status") or "active"
        if action["action_id"] == ids.HOME_SEVERITY_FILTER:
            severity = None if picked == "any" else picked
        else:
            status = picked or "active"
        publish_home(services, client, body["user"]["id"], severity=severity, status=status)

    @app.action("open_card")
    def open_card_clicked(ack: Ack):
        # A link button: Slack opens the URL, but still tells us, and wants an ack.
        ack()

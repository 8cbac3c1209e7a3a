"""Shortcuts: "Report incident" (global), "Add to incident timeline" and "Attach to incident"
(message). Each acks at once; its form opens after the ack, as work."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import blocks, ids
from bot.slack.services import Services

from .commands import declare_form_requested
from .common import as_dict, bind, later, string, unescaped


def add_to_timeline(services: Services, ack: Ack, body: dict[str, Any], client: WebClient):
    ack()
    message = as_dict(body.get("message"))
    view = blocks.timeline_note_modal(
        unescaped(string(message, "text")),
        blocks.metadata(
            channel=string(as_dict(body.get("channel")), "id"), ts=string(message, "ts")
        ),
    )
    user_id = body["user"]["id"]
    later(services, client, user_id, None, open_view, body["trigger_id"], view)


def attach_screenshots(
    services: Services, ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond
):
    message = as_dict(body.get("message"))
    files = message.get("files") if isinstance(message.get("files"), list) else []
    file_ids = [file_id for f in files if (file_id := string(as_dict(f), "id"))]
    ack()
    user_id = body["user"]["id"]
    if not file_ids:
        services.work.submit(respond, "That message has no files to attach.")
        return
    view = blocks.attach_from_message_modal(
        len(file_ids),
        blocks.metadata(
            channel=string(as_dict(body.get("channel")), "id"),
            ts=string(message, "ts"),
            files=file_ids,
        ),
    )
    later(services, client, user_id, None, open_view, body["trigger_id"], view)


def register(app: App, services: Services) -> None:
    app.global_shortcut(ids.DECLARE_SHORTCUT)(bind(services, declare_form_requested))
    app.message_shortcut(ids.TIMELINE_SHORTCUT)(bind(services, add_to_timeline))
    app.message_shortcut(ids.ATTACH_SHORTCUT)(bind(services, attach_screenshots))


def open_view(services: Services, client: WebClient, trigger_id: str, view: Any) -> None:
    client.views_open(trigger_id=trigger_id, view=view)

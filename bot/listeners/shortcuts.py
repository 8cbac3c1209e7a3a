"""Global shortcut "Report incident" and message shortcut "Add to incident timeline"."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot import blocks
from bot import slack_ids as ids
from bot.app import Services

from .commands import open_declare_modal
from .common import unescaped


def register(app: App, services: Services) -> None:
    @app.global_shortcut(ids.DECLARE_SHORTCUT)
    def report_incident(ack: Ack, body: dict[str, Any], client: WebClient):
        ack()
        open_declare_modal(services, client, body["trigger_id"], body["user"]["id"], None)

    @app.message_shortcut(ids.TIMELINE_SHORTCUT)
    def add_to_timeline(ack: Ack, body: dict[str, Any], client: WebClient):
        ack()
        message = body.get("message") or {}
        client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.timeline_note_modal(
                unescaped(message.get("text")),
                blocks.metadata(
                    channel=(body.get("channel") or {}).get("id"), ts=message.get("ts")
                ),
            ),
        )

    @app.message_shortcut(ids.ATTACH_SHORTCUT)
    def attach_screenshots(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond):
        ack()
        message = body.get("message") or {}
        file_ids = [f["id"] for f in message.get("files") or [] if f.get("id")]
        if not file_ids:
            respond(text="That message has no files to attach.", response_type="ephemeral")
            return
        client.views_open(
            trigger_id=body["trigger_id"],
            view=blocks.attach_from_message_modal(
                len(file_ids),
                blocks.metadata(
                    channel=(body.get("channel") or {}).get("id"),
                    ts=message.get("ts"),
                    files=file_ids,
                ),
            ),
        )

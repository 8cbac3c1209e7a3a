"""Payload reading and replying shared by the listeners."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.app import Services
from bot.delivery import Problem

log = logging.getLogger(__name__)


def text_value(values: dict[str, Any], block_id: str) -> str | None:
    """A plain_text_input's value, as typed (view state text is not mrkdwn-escaped)."""
    element = values.get(block_id, {}).get(block_id) or {}
    return element.get("value")


def selected_value(
    values: dict[str, Any], block_id: str, action_id: str | None = None
) -> str | None:
    element = values.get(block_id, {}).get(action_id or block_id) or {}
    option = element.get("selected_option") or {}
    return option.get("value")


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def read_value(action: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(action.get("value") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def modal_errors(view: dict[str, Any], field: str | None, message: str) -> dict[str, str]:
    """`response_action: errors` keyed on the input block the error is about (or the first)."""
    input_blocks = [b["block_id"] for b in view.get("blocks", []) if b.get("type") == "input"]
    block_id = field if field in input_blocks else input_blocks[0]
    return {block_id: message}


def tell_user(client: WebClient, user_id: str, channel_id: str | None, text: str) -> None:
    """An ephemeral message where the user is, or a DM from the app when that is not possible."""
    if channel_id:
        try:
            client.chat_postEphemeral(channel=channel_id, user=user_id, text=text)
            return
        except SlackApiError as error:
            log.info("ephemeral to %s in %s failed (%s); sending a DM", user_id, channel_id, error)
    try:
        client.chat_postMessage(channel=user_id, text=text)
    except SlackApiError as error:
        log.warning("could not tell %s: %s (%s)", user_id, text, error.response.get("error"))


def explain_problems(problems: list[Problem]) -> str | None:
    """One message for what the user may need to know about undelivered updates."""
    lines = list(dict.fromkeys(p.explain() for p in problems))
    return "\n".join(f"⚠️ {line}" for line in lines) or None


def deliver_and_report(
    services: Services,
    client: WebClient,
    incident_id: int | None,
    user_id: str,
    channel_id: str | None,
) -> None:
    """Send the incident's queued Slack updates now; tell the user if any did not go through."""
    result = services.deliverer.drain(incident_id=incident_id)
    message = explain_problems(result.problems)
    if message:
        tell_user(client, user_id, channel_id, message)


def unescaped(text: str | None) -> str:
    return blocks.unescape(text or "")


def permalink_of(client: WebClient, channel: str | None, ts: str | None) -> str | None:
    """A message's permalink from Slack (never built by hand: hosts differ on Grid, GovSlack)."""
    if not channel or not ts:
        return None
    try:
        return client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
    except SlackApiError as error:
        log.info("no permalink for %s/%s: %s", channel, ts, error.response.get("error"))
        return None

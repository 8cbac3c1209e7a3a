"""Thin Slack listeners by surface: parse the payload, call one domain function, render."""

import logging
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError

from bot.slack import blocks
from bot.slack.listeners import (
    actions,
    closing,
    commands,
    coordination,
    events,
    followups,
    options,
    shortcuts,
    updating,
    views,
)
from bot.slack.listeners.common import bind, failure_message, tell_user
from bot.slack.services import Services

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    surfaces = (commands, views, actions, coordination, updating, shortcuts, events, options)
    for surface in (*surfaces, followups, closing):
        surface.register(app, services)
    app.error(bind(services, listener_failed))


def listener_failed(
    services: Services, error: Exception, body: dict[str, Any]
) -> BoltResponse | None:
    """Nothing fails silently: log it, and tell the person what happened if we can.

    Every body that gets here was verified (bot.slack.http) or came over Socket Mode.
    """
    if isinstance(error, BoltUnhandledRequestError):
        # A link button, a view closed, an event we did not subscribe to: nothing to do.
        log.info("no listener for %s; answered 200", _kind(body))
        return BoltResponse(status=200, body="")
    user_id = body.get("user_id") or _id_of(body.get("user"))
    channel_id = body.get("channel_id") or _id_of(body.get("channel"))
    log.error(
        "%s from %s failed: %r",
        _kind(body),
        user_id,
        error,
        exc_info=error,
    )
    if not isinstance(user_id, str) or not user_id:
        return None
    # Told after the response: the person's message is a Slack call, and the ack is due.
    services.work.submit(
        tell_user,
        services,
        user_id,
        channel_id if isinstance(channel_id, str) else None,
        f"⚠️ {blocks.escape(failure_message(error))}",
    )
    return None


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else None


def _kind(body: dict[str, Any]) -> str:
    """What the request was, for the log: its type and the id it names, never its content."""
    kind = body.get("type") or body.get("command") or "request"
    event = body.get("event") if isinstance(body.get("event"), dict) else {}
    actions = body.get("actions") if isinstance(body.get("actions"), list) else []
    view = body.get("view") if isinstance(body.get("view"), dict) else {}
    named = (
        event.get("type")
        or (actions[0].get("action_id") if actions and isinstance(actions[0], dict) else None)
        or view.get("callback_id")
        or body.get("callback_id")
        or body.get("action_id")
    )
    return f"{kind} {str(named)[:80]}" if named else str(kind)[:80]

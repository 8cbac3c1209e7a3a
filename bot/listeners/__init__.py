"""Thin Slack listeners by surface: parse the payload, call one domain function, render."""

import logging
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import OperationalError

from bot.app import Services
from bot.listeners import actions, commands, events, options, shortcuts, views
from bot.listeners.common import tell_user

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    for surface in (commands, views, actions, shortcuts, events, options):
        surface.register(app, services)

    @app.error
    def listener_failed(error: Exception, body: dict[str, Any], client: WebClient) -> None:
        """Nothing fails silently: log it, and tell the person what happened if we can."""
        user_id = body.get("user_id") or (body.get("user") or {}).get("id")
        channel_id = body.get("channel_id") or (body.get("channel") or {}).get("id")
        log.error(
            "%s from %s failed: %r",
            body.get("type") or body.get("command") or "request",
            user_id,
            error,
            exc_info=error,
        )
        if not user_id:
            return
        if isinstance(error, SlackApiError):
            message = (
                f"Slack refused a step of that ({error.response.get('error')}). Anything you "
                "had already saved is kept; please try again."
            )
        elif isinstance(error, OperationalError):
            message = (
                "The incident database is unreachable right now, so nothing was changed. "
                "Please try again in a minute."
            )
        else:
            message = (
                "Something went wrong on our side (it is logged). `/incident show <id>` shows "
                "what was saved."
            )
        tell_user(client, user_id, channel_id, f"⚠️ {message}")

"""How long Bolt takes to ack each request, for `incident_bot_ack_seconds`."""

from __future__ import annotations

import time
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.request.payload_utils import (
    is_action,
    is_options,
    is_shortcut,
    is_slash_command,
    is_view,
)

from bot import metrics


class TimedApp(App):
    """Bolt's App, timing each request from `dispatch` to the response it returns.

    A global middleware can't time this: in the sync App, a middleware's `next()` only lets
    the chain go on, and the listener runs after every middleware has returned. The app
    processes before responding (`process_before_response`), so the response `dispatch`
    returns is the ack, made once the listener has saved the change; the adapter sends it at
    once (waitress in HTTP mode, the Socket Mode client over its WebSocket).
    """

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        started = time.perf_counter()
        response = super().dispatch(req)
        metrics.ACK_SECONDS.labels(
            mode="socket" if req.mode == "socket_mode" else "http",
            kind=request_kind(req.body),
            # A listener that raised answers 500 (Socket Mode then sends no ack at all).
            outcome="ok" if response.status < 400 else "error",
        ).observe(time.perf_counter() - started)
        return response


def request_kind(body: dict[str, Any]) -> str:
    """command, action, view, shortcut, options, or event (the Events API, and anything else)."""
    if is_slash_command(body):
        return "command"
    if is_action(body):
        return "action"
    if is_view(body):
        return "view"
    if is_shortcut(body):
        return "shortcut"
    if is_options(body):
        return "options"
    return "event"

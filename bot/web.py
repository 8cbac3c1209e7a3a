"""WSGI app for HTTP mode: Slack's requests on /slack/events, and /healthz for load balancers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"


def make_wsgi_app(app: App, engine: Engine) -> Callable[..., Iterable[bytes]]:
    slack = SlackRequestHandler(app, path=SLACK_PATH)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                status, body = "200 OK", b"ok\n"
            except Exception as error:  # any database failure means unhealthy, not a crash
                log.warning("health check: database unreachable: %s", error)
                status, body = "503 Service Unavailable", b"database unreachable\n"
            start_response(
                status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return slack(environ, start_response)

    return wsgi

"""WSGI app for HTTP mode: Slack's requests on /slack/events, and /healthz for load balancers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import waitress
from slack_bolt import App
from sqlalchemy import Engine, text
from waitress.server import BaseWSGIServer, MultiSocketServer

from bot.settings import Settings
from bot.slack.http import make_slack_endpoint

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
SERVER_THREADS = 8


def make_wsgi_app(app: App, engine: Engine, settings: Settings) -> Callable[..., Iterable[bytes]]:
    assert settings.slack_signing_secret, "HTTP mode needs SLACK_SIGNING_SECRET"
    slack = make_slack_endpoint(app, settings.slack_signing_secret, settings.slack_max_body_bytes)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == SLACK_PATH and method == "POST":
            return slack(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            return _health(engine, start_response)
        return _plain(start_response, "404 Not Found", b"not found\n")

    return wsgi


def _health(engine: Engine, start_response: Callable[..., Any]) -> Iterable[bytes]:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # any database failure means unhealthy, not a crash
        log.warning("health check: database unreachable: %s", error)
        return _plain(start_response, "503 Service Unavailable", b"database unreachable\n")
    return _plain(start_response, "200 OK", b"ok\n")


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_server(
    wsgi: Callable[..., Iterable[bytes]], settings: Settings, host: str, port: int
) -> BaseWSGIServer | MultiSocketServer:
    """waitress, a production WSGI server, refusing bodies over the limit before reading them."""
    return waitress.create_server(
        wsgi,
        host=host,
        port=port,
        threads=SERVER_THREADS,
        # waitress refuses a body of this size or more (413), chunked ones as they arrive.
        max_request_body_size=settings.slack_max_body_bytes + 1,
    )

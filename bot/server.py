"""The one WSGI app on PORT: Slack's requests on /slack/events (HTTP mode), /healthz (liveness)
and /readyz (readiness) for load balancers, /metrics for Prometheus, and the web surface (API
and pages) for everything else."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
import waitress
from slack_bolt import App
from sqlalchemy import Engine, text
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, MultiSocketServer

from bot import logs, metrics
from bot.settings import Settings
from bot.slack.http import make_slack_endpoint
from db import readiness

log = logging.getLogger(__name__)

SLACK_PATH = "/slack/events"
SERVER_THREADS = 8


WSGIApp = Callable[..., Iterable[bytes]]


def make_wsgi_app(
    app: App | None, engine: Engine, settings: Settings, web: WSGIApp | None = None
) -> WSGIApp:
    """`app` is the Bolt app in HTTP mode (None in Socket Mode or without Slack)."""
    slack = None
    if app is not None:
        assert settings.slack_signing_secret, "HTTP mode needs SLACK_SIGNING_SECRET"
        slack = make_slack_endpoint(
            app, settings.slack_signing_secret, settings.slack_max_body_bytes
        )
    scrape = prometheus_client.make_wsgi_app(metrics.REGISTRY)

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if path == SLACK_PATH and method == "POST" and slack is not None:
            return slack(environ, start_response)
        if path == "/healthz" and method in ("GET", "HEAD"):
            return _health(engine, start_response)
        if path == "/readyz" and method in ("GET", "HEAD"):
            return _ready(engine, start_response)
        if path == "/metrics" and method == "GET":
            return scrape(environ, start_response)
        if web is not None:
            return web(environ, start_response)
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


def _ready(engine: Engine, start_response: Callable[..., Any]) -> Iterable[bytes]:
    # Not logged: load balancers ask every few seconds, and the answer says why.
    problem = readiness.problem(engine)
    if problem is not None:
        return _plain(start_response, "503 Service Unavailable", f"{problem}\n".encode())
    return _plain(start_response, "200 OK", b"ready\n")


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


# A multipart form's boundaries, headers and caption around the image.
UPLOAD_OVERHEAD = 64 * 1024
# Forms and JSON bodies of the web surface.
WEB_MAX_BODY_BYTES = 1024 * 1024
_UPLOAD_PATH = re.compile(r"^(/api/v1)?/incidents/[^/]+/screenshots$")


def body_limit(settings: Settings, path: str) -> int:
    """The largest body a path takes: Slack's requests, a screenshot upload (the image and the
    form around it), or a web form or JSON body."""
    if path == SLACK_PATH:
        return settings.slack_max_body_bytes
    if _UPLOAD_PATH.match(path):
        return settings.max_screenshot_bytes + UPLOAD_OVERHEAD
    return WEB_MAX_BODY_BYTES


def make_server(
    wsgi: WSGIApp, settings: Settings, host: str, port: int
) -> BaseWSGIServer | MultiSocketServer:
    """waitress, a production WSGI server, refusing a body over its path's limit (413) as soon as
    the headers announce it, or as a chunked one grows past it, before the app sees it."""

    class Parser(HTTPRequestParser):
        def parse_header(self, header_plus: bytes) -> None:
            super().parse_header(header_plus)
            # `received` checks the body against the adjustments' limit after the headers.
            self.adj = copy.copy(self.adj)
            self.adj.max_request_body_size = body_limit(settings, self.path) + 1

    class Channel(HTTPChannel):
        parser_class = Parser

    largest = max(body_limit(settings, p) for p in (SLACK_PATH, "/incidents/1/screenshots", "/"))
    server = waitress.create_server(
        logs.fresh_per_request(wsgi),
        host=host,
        port=port,
        threads=SERVER_THREADS,
        max_request_body_size=largest + 1,
    )
    server.channel_class = Channel  # type: ignore[union-attr]
    return server

"""Serve a bolt `App` over real loopback HTTP (wsgiref), for signed-request tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # bolt listeners may still run after a response; never block exit


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_bolt_app(app: App, path: str = "/slack/events") -> Iterator[str]:
    """Run ``app`` on ``127.0.0.1:<free port>``; yields the request URL (``…/slack/events``)."""
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app, path=path),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="bolt-wsgi", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}{path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

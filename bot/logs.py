"""Log lines: readable text by default, or one JSON object per line (LOG_FORMAT=json) carrying
the ids of what is being handled: the incident, the Slack team, user and channel, the request.

The ids live in context variables, set when a request starts (a Bolt middleware for Slack, the
web surface's `before_request`) and by `bind` where code learns an incident's id; a filter on the
one handler copies them onto each record. Work that follows an ack runs in a copy of its
request's context (bot.work), so its lines carry the same ids.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from contextvars import Context, ContextVar
from types import TracebackType
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("incident_id", "team_id", "user_id", "channel_id", "request_id")

_ids: dict[str, ContextVar[str | int | None]] = {
    name: ContextVar(f"log_{name}", default=None) for name in FIELDS
}
# A request id that a proxy in front of the bot sent, taken as is when it looks like one.
_REQUEST_ID = re.compile(r"^[\w.:-]{1,100}$")


def bind(**ids: str | int | None) -> None:
    """Put ids on every line logged from here on in this request (e.g. `bind(incident_id=12)`)."""
    for name, value in ids.items():
        _ids[name].set(value)


def start_request(
    request_id: str,
    *,
    team_id: str | None = None,
    user_id: str | None = None,
    channel_id: str | None = None,
) -> None:
    """A new request on this thread: every id is set, so none is left from the previous one."""
    bind(
        request_id=request_id,
        team_id=team_id,
        user_id=user_id,
        channel_id=channel_id,
        incident_id=None,
    )


def request_id(offered: object = None) -> str:
    """`offered` (an upstream X-Request-ID, a Slack event or trigger id) when it is a plausible
    id, else a new one."""
    if isinstance(offered, str) and _REQUEST_ID.match(offered):
        return offered
    return uuid.uuid4().hex


def slack_request(context: Any, body: dict[str, Any], next_: Callable[[], None]) -> None:
    """Bolt global middleware: the ids of the Slack request about to be handled.

    Bolt has already read the team, user and channel from the payload (`context`). Slack sends no
    request id: an event's id (kept across Slack's retries) names the request, else a new one.
    Never an interaction's trigger id: with the bot token it opens a modal for a few seconds.
    """
    start_request(
        request_id(body.get("event_id")),
        team_id=context.team_id,
        user_id=context.user_id,
        channel_id=context.channel_id,
    )
    next_()


WSGIApp = Callable[..., Iterable[bytes]]


def fresh_per_request(wsgi: WSGIApp) -> WSGIApp:
    """Each HTTP request runs in an empty context: a health check or a refused Slack request on
    a server thread never carries the ids of the request that thread served before."""

    def handle(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return Context().run(wsgi, environ, start_response)

    return handle


class _RequestIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _ids.items():
            value = var.get()
            if value is not None:
                setattr(record, name, value)
        return True


def handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """Where log lines go (standard error unless `stream`), formatted as LOG_FORMAT says."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.addFilter(_RequestIds())
        handler.setFormatter(
            JsonFormatter(
                ["levelname", "name", "message"],
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    return handler


def configure(level: str, log_format: str) -> None:
    """Logging for the process: LOG_LEVEL and LOG_FORMAT, on standard error."""
    logging.basicConfig(level=level, handlers=[handler(log_format)])
    if log_format == "json":
        # One object per line holds for warnings and crashed threads too, not only log calls.
        logging.captureWarnings(True)
        sys.excepthook = _log_uncaught
        threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    logging.getLogger("bot").critical(
        "uncaught %s", kind.__name__, exc_info=(kind, error, traceback)
    )


def _log_uncaught_in_thread(hook: threading.ExceptHookArgs) -> None:
    if hook.exc_type is SystemExit:  # as the default hook: a thread may end itself this way
        return
    logging.getLogger("bot").critical(
        "uncaught %s in thread %s",
        hook.exc_type.__name__,
        hook.thread.name if hook.thread else "?",
        exc_info=(hook.exc_type, hook.exc_value, hook.exc_traceback),
    )

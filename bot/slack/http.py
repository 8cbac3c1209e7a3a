"""Slack's HTTP requests, checked before Bolt sees them: size, signature, encoding, shape.

Bolt 1.30 verifies signatures itself, but a malformed timestamp header makes it raise (500) and
hand the unsigned body to the app's error handler, it logs rejected bodies, it reads a body of
any size, and its form parser drops every form body that contains the word "payload" (a command
such as `/incident payload service down`). So this front door does all of that first: Bolt only
ever sees a request that is small enough, signed, UTF-8 and of a shape Slack sends, parsed here.
Nothing of a refused request is logged but why it was refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt import App, BoltRequest, BoltResponse

log = logging.getLogger(__name__)

# Slack's replay window: a request older (or newer) than this is refused.
REPLAY_WINDOW_SECONDS = 300
# Unix seconds as ASCII digits ([0-9], not \d, which also matches other scripts' digits).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
# Interactive payloads name who acted in `user`; these also need the listed string fields.
_INTERACTIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "block_actions": (),
    "view_submission": (),
    "view_closed": (),
    "shortcut": ("callback_id", "trigger_id"),
    "message_action": ("callback_id", "trigger_id"),
    "block_suggestion": ("action_id", "value"),
}


class Refused(Exception):
    """The request is answered with `status` and never reaches Bolt."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def declared_length(environ: dict[str, Any], max_bytes: int) -> int | None:
    """Content-Length, refused when over `max_bytes`; None for a chunked body."""
    length = environ.get("CONTENT_LENGTH") or ""
    if not length:
        return None
    if not length.isdigit():
        raise Refused(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
    if int(length) > max_bytes:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"Content-Length {length}")
    return int(length)


def read_body(environ: dict[str, Any], length: int | None, max_bytes: int) -> bytes:
    """The body, never more than `max_bytes` of it."""
    stream = environ["wsgi.input"]
    if length is not None:
        return stream.read(length)
    if not environ.get("wsgi.input_terminated"):
        return b""  # no length and no end marker: PEP 3333 says there is no body
    # A chunked body passed through by the server: read one byte past the limit at most.
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        chunk = stream.read(min(64 * 1024, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "chunked body over the limit")
    return b"".join(chunks)


def check_signature_headers(environ: dict[str, Any], now: float) -> tuple[str, str]:
    """The timestamp and signature headers, if well formed and fresh; cheap, before any read."""
    timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
    signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Refused(HTTPStatus.UNAUTHORIZED, "malformed X-Slack-Request-Timestamp")
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise Refused(HTTPStatus.UNAUTHORIZED, "X-Slack-Request-Timestamp outside 5 minutes")
    if not _SIGNATURE.fullmatch(signature):
        raise Refused(HTTPStatus.UNAUTHORIZED, "malformed X-Slack-Signature")
    return timestamp, signature


def verify_signature(secret: str, timestamp: str, signature: str, body: bytes) -> None:
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refused(HTTPStatus.UNAUTHORIZED, "signature does not match")


def parse_body(raw: bytes, content_type: str) -> dict[str, Any]:
    """The body as Slack meant it: JSON (events), a `payload` field (interactivity) or a form."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(HTTPStatus.BAD_REQUEST, "body is not UTF-8") from None
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        body = _json_object(text, "JSON body")
    elif media_type == "application/x-www-form-urlencoded":
        try:
            form = dict(
                parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
            )
        except ValueError:  # UnicodeDecodeError included: %-escapes that are not UTF-8
            raise Refused(HTTPStatus.BAD_REQUEST, "malformed form body") from None
        body = _json_object(form["payload"], "payload field") if "payload" in form else form
    else:
        raise Refused(HTTPStatus.BAD_REQUEST, f"unexpected Content-Type {media_type[:40]!r}")
    check_shape(body)
    return body


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} is not a JSON object")
    return value


def check_shape(body: dict[str, Any]) -> None:
    """Refuse what Slack never sends, so that no listener (nor Bolt) trips over it."""

    def need(condition: bool, what: str) -> None:
        if not condition:
            raise Refused(HTTPStatus.BAD_REQUEST, what)

    def strings(container: dict[str, Any], *names: str) -> None:
        for name in names:
            need(isinstance(container.get(name), str), f"{name} is missing or not a string")

    if "ssl_check" in body:
        return  # Slack's certificate probe; Bolt answers it
    if "command" in body:
        strings(body, "command", "text", "user_id", "channel_id", "trigger_id")
        return
    kind = body.get("type")
    need(isinstance(kind, str), "neither a command nor a typed payload")
    if kind == "url_verification":
        strings(body, "challenge")
    elif kind == "event_callback":
        event = body.get("event")
        need(isinstance(event, dict), "event is missing or not an object")
        strings(event, "type")
    elif kind in _INTERACTIVE_FIELDS:
        user = body.get("user")
        need(isinstance(user, dict), "user is missing or not an object")
        strings(user, "id")
        strings(body, *_INTERACTIVE_FIELDS[kind])
        if kind == "block_actions":
            actions = body.get("actions")
            need(isinstance(actions, list) and bool(actions), "actions is empty or not a list")
            for action in actions:
                need(isinstance(action, dict), "an action is not an object")
                strings(action, "action_id")
        if kind in ("view_submission", "view_closed"):
            view = body.get("view")
            need(isinstance(view, dict), "view is missing or not an object")
            strings(view, "type", "callback_id")
            state = view.get("state", {"values": {}})
            need(
                isinstance(state, dict) and isinstance(state.get("values"), dict),
                "view.state.values is not an object",
            )


class _VerifiedRequest(BoltRequest):
    """A request this module verified and parsed; Bolt is handed the parsed body as it is."""

    def __init__(self, raw_body: str, body: dict[str, Any], headers: dict[str, list[str]]):
        # BoltRequest only keeps an already parsed body in Socket Mode; it is HTTP all the same.
        super().__init__(body=body, headers=headers, mode="socket_mode")
        self.raw_body = raw_body
        self.mode = "http"

    def to_copyable(self) -> BoltRequest:
        copy = _VerifiedRequest(self.raw_body, json.loads(json.dumps(self.body)), self.headers)
        copy.context = self.context.to_copyable()
        return copy


def _headers(environ: dict[str, Any]) -> dict[str, list[str]]:
    headers = {
        key[5:].replace("_", "-").lower(): [value]
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    headers["content-type"] = [environ.get("CONTENT_TYPE", "")]
    return headers


def _json_response(
    start_response: Callable[..., Any], status: HTTPStatus, body: dict[str, Any]
) -> Iterable[bytes]:
    data = json.dumps(body).encode("utf-8")
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]


_ERRORS = {
    HTTPStatus.BAD_REQUEST: "malformed request",
    HTTPStatus.UNAUTHORIZED: "invalid request",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "request too large",
}


def make_slack_endpoint(
    app: App,
    signing_secret: str,
    max_body_bytes: int,
    clock: Callable[[], float] = time.time,
) -> Callable[..., Iterable[bytes]]:
    """A WSGI app for POST /slack/events in front of `app` (whose own verification is off)."""

    def endpoint(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            # Nothing is read before the size and the signature headers pass.
            length = declared_length(environ, max_body_bytes)
            timestamp, signature = check_signature_headers(environ, clock())
            raw = read_body(environ, length, max_body_bytes)
            verify_signature(signing_secret, timestamp, signature, raw)
            body = parse_body(raw, environ.get("CONTENT_TYPE", ""))
            request = _VerifiedRequest(raw.decode("utf-8"), body, _headers(environ))
        except Refused as refused:
            log.warning(
                "refused a request to /slack/events from %s (Content-Length %s): %s",
                environ.get("REMOTE_ADDR", "?"),
                (environ.get("CONTENT_LENGTH") or "none")[:20],
                refused,
            )
            return _json_response(
                start_response, refused.status, {"error": _ERRORS[refused.status]}
            )
        response = app.dispatch(request)
        return _bolt_response(start_response, response)

    return endpoint


def _bolt_response(start_response: Callable[..., Any], response: BoltResponse) -> Iterable[bytes]:
    data = (response.body or "").encode("utf-8")
    headers = [
        (name, value)
        for name, values in response.headers.items()
        if name.lower() != "content-length"
        for value in values
    ]
    headers.append(("Content-Length", str(len(data))))
    status = HTTPStatus(response.status)
    start_response(f"{status.value} {status.phrase}", headers)
    return [data]

"""A loopback fake of the Slack Web API, file hosting and response_url endpoints.

Point the real ``slack_sdk.WebClient`` at it with ``WebClient(token=fake.bot_token,
base_url=fake.api_url)`` (or just ``fake.client()``). Everything is in memory and every
public method is thread-safe, so bolt's worker threads and the test thread can share it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import math
import mimetypes
import os
import random
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import blockkit, defaults
from .oidc import METHODS as OIDC_METHODS
from .oidc import OidcError, OidcProvider

if TYPE_CHECKING:
    from slack_sdk import WebClient

    from .socket_mode import FakeSocketMode

Params = dict[str, Any]
Handler = Callable[[Params], dict[str, Any]]
AfterCall = Callable[[str, Params, dict[str, Any]], None]  # (method, params, response body)

log = logging.getLogger(__name__)

# Pseudo-methods: endpoints outside /api/ that are still recorded in `calls` and can be
# targeted by `fail()` / `delay()`.
UPLOAD, DOWNLOAD, RESPONSE_URL = "upload", "download", "response_url"

# Form-encoded requests carry these as JSON strings; Slack decodes them server-side.
_JSON_FIELDS = ("view", "blocks", "files", "attachments", "metadata")

# Bot scope(s) each method needs (any one of them). Methods not listed need none.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.delete": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
    "users.conversations": ("channels:read", "groups:read"),
    "usergroups.users.list": ("usergroups:read",),
    "conversations.info": ("channels:read", "groups:read"),
    "conversations.members": ("channels:read", "groups:read"),
    # ...and the one of the channel's type (HISTORY_SCOPES), checked when the channel is known.
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "conversations.create": ("channels:manage", "groups:write"),
    "conversations.invite": ("channels:manage", "groups:write"),
    "conversations.archive": ("channels:manage", "groups:write"),
    "conversations.setTopic": ("channels:manage", "groups:write"),
    "conversations.rename": ("channels:manage", "groups:write"),
    "conversations.join": ("channels:join",),
    "conversations.open": ("im:write",),
    "pins.add": ("pins:write",),
    "pins.remove": ("pins:write",),
    "pins.list": ("pins:read",),
    "files.info": ("files:read",),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}

# Reading a conversation's messages needs the scope of its type.
HISTORY_SCOPES = {
    "public_channel": "channels:history",
    "private_channel": "groups:history",
    "im": "im:history",
    "mpim": "mpim:history",
}

DEFAULT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "files:read",
        "files:write",
        "channels:manage",
        "groups:write",
        "channels:join",
        "channels:read",
        "groups:read",
        "channels:history",
        "groups:history",
        "users:read",
        "users:read.email",
        "im:write",
        "im:history",
        "pins:read",
        "pins:write",
        "usergroups:read",
    }
)

LOGIN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><meta charset="utf-8">'
    '<title>Slack</title></head><body class="signin"><h1>Sign in to Slack</h1>'
    '<form id="signin_form" method="post" action="/"></form></body></html>'
)


class SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ...}``.

    ``headers`` are added to the HTTP answer (e.g. ``Retry-After``); ``extra`` to the body.
    """

    def __init__(
        self, error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


class Call(NamedTuple):
    """One recorded request: ``method, params = call``."""

    method: str
    params: Params


@dataclass
class Fault:
    """An injected failure or delay; returned by `FakeSlack.fail` & co. so tests can inspect it."""

    methods: frozenset[str] | None  # None = every /api/ method
    status: int = 200
    error: str | None = None
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | bytes | None = None
    times: int | None = 1  # None = until cleared
    ratio: float | None = None
    rng: random.Random | None = None
    delay: float = 0.0
    # Effects once an /api/ call has been performed, whatever its outcome, unless `fail`
    # replaced it (see `FakeSlack.answer_late` & co.).
    answer_late: float = 0.0
    drop: bool = False
    callback: AfterCall | None = None
    # Only calls whose `channel` parameter is this one (a failing place among working ones).
    channel: str | None = None
    hits: int = 0
    # `time.time()` of the last call it applied to (when Slack last failed, for benchmarks).
    last_hit_at: float | None = None

    @property
    def after_call(self) -> bool:
        return bool(self.answer_late or self.drop or self.callback)

    def matches(self, method: str) -> bool:
        if self.methods is None:
            return method not in (UPLOAD, DOWNLOAD, RESPONSE_URL)
        return method in self.methods

    def take(self, method: str, params: Params | None = None) -> bool:
        """Consume one use if this fault applies to ``method`` now (caller holds the lock)."""
        if (self.times is not None and self.times <= 0) or not self.matches(method):
            return False
        if self.channel is not None and (params or {}).get("channel") != self.channel:
            return False
        if self.ratio is not None and self.rng is not None and self.rng.random() >= self.ratio:
            return False
        if self.times is not None:
            self.times -= 1
        self.hits += 1
        self.last_hit_at = time.time()
        return True


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterable[bytes] | None = None  # set for a chunked (streamed) body
    drop: bool = False  # close the connection instead of answering


@dataclass
class _StoredFile:
    meta: dict[str, Any]
    content: bytes
    chunked: bool = False


def _truthy(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")


def _json_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode("utf-8")


def ensure_no_proxy() -> None:
    """Make urllib (and so WebClient) bypass HTTP(S)_PROXY for loopback addresses."""
    for var in ("NO_PROXY", "no_proxy"):
        current = [h.strip() for h in os.environ.get(var, "").split(",") if h.strip()]
        for host in ("127.0.0.1", "localhost"):
            if host not in current:
                current.append(host)
        os.environ[var] = ",".join(current)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked responses
    fake: FakeSlack  # set on a per-server subclass

    def do_GET(self) -> None:  # http.server naming
        self.fake._serve(self)

    def do_POST(self) -> None:
        self.fake._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; `fake.calls` is the log

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def write(self, resp: _Response) -> None:
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.content_type)
        for key, value in resp.headers.items():
            self.send_header(key, value)
        self.send_header("Connection", "close")
        self.close_connection = True
        if resp.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in resp.chunks:
                if chunk:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

    def drop(self) -> None:
        """Close the connection without answering; the client sees ``RemoteDisconnected``."""
        self.close_connection = True  # or handle() waits for a next request on this socket
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of concurrent clients must not overflow the backlog


class FakeSlack:
    """In-memory Slack workspace served over loopback HTTP.

    Use as a context manager (``with FakeSlack() as fake:``) or call `start`/`stop`.
    """

    def __init__(
        self,
        *,
        bot_token: str = defaults.BOT_TOKEN,
        app_token: str = defaults.APP_TOKEN,
        team_id: str = defaults.TEAM_ID,
        team_domain: str = defaults.TEAM_DOMAIN,
        team_name: str = defaults.TEAM_NAME,
        app_id: str = defaults.APP_ID,
        bot_id: str = defaults.BOT_ID,
        bot_user_id: str = defaults.BOT_USER_ID,
        bot_name: str = defaults.BOT_NAME,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        strict_channels: bool = False,
        trigger_ttl: float = 3.0,
        home_tab_enabled: bool = True,
        socket_mode: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.team_domain = team_domain
        self.team_name = team_name
        self.app_id = app_id
        self.bot_id = bot_id
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name
        self.scopes: set[str] = set(scopes)
        self.strict_channels = strict_channels  # False: unknown C…/G… IDs spring into existence
        self.trigger_ttl = trigger_ttl
        self.home_tab_enabled = home_tab_enabled
        self.msg_blocks_text_limit = blockkit.MESSAGE_BLOCKS_TEXT_LIMIT
        self.host = host
        self.socket_mode: FakeSocketMode | None = None
        self._want_socket_mode = socket_mode

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._rng = random.Random(0)  # block_ids, hashes: deterministic per instance
        self._last_ts_micros = 0

        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._members: dict[str, set[str] | None] = {}  # None: membership not tracked
        self._gone_channels: set[str] = set()
        self._dms: dict[str, str] = {}  # user_id -> D… channel
        self._usergroups: dict[str, dict[str, Any]] = {}
        self._pins: dict[str, dict[str, int]] = {}  # channel -> {message ts: pinned at}, in order
        self._messages: dict[str, list[dict[str, Any]]] = {}
        # time.monotonic() at which each message was stored, by (channel ID, ts); kept off the
        # message dicts so it can never leak into what clients or tests get back.
        self._posted: dict[tuple[str, str], float] = {}
        # Read-after-write lag: messages stored less than this many seconds ago are left out
        # of conversations.history/replies answers (fake.messages() & co. still show them).
        self.visibility_delay = 0.0
        self._post_rate: tuple[float, int] | None = None  # (per channel per second, burst)
        self._post_tokens: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)
        self._ephemeral: list[dict[str, Any]] = []
        self._files: dict[str, _StoredFile] = {}
        self._uploads: dict[str, dict[str, Any]] = {}  # upload token -> pending upload
        self._downloads: list[tuple[str, bool]] = []
        self._triggers: dict[str, dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._view_owner: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._home: dict[str, str] = {}
        self._response_urls: dict[str, list[dict[str, Any]]] = {}
        self._custom: dict[str, Handler] = {}
        self._response_posts: list[tuple[str, dict[str, Any]]] = []
        self.errors: list[Exception] = []  # exceptions raised inside method handlers
        self.oidc = OidcProvider(team_id)  # Sign in with Slack

        self._methods: dict[str, Handler] = {
            "api.test": lambda p: {"args": {k: v for k, v in p.items() if k != "token"}},
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "users.conversations": self._users_conversations,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.join": self._conversations_join,
            "conversations.archive": self._conversations_archive,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.rename": self._conversations_rename,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "files.info": self._files_info,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }

        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)
        self.add_user(
            defaults.USER_ID,
            defaults.USER_NAME,
            real_name="Alice Example",
            email="alice@example.com",
        )
        self.add_channel(defaults.CHANNEL_ID, defaults.CHANNEL_NAME)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSlack:
        """Bind to a free loopback port and serve in a daemon thread."""
        ensure_no_proxy()
        handler = type("FakeSlackHandler", (_RequestHandler,), {"fake": self})
        self._server = _Server((self.host, 0), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            name="fakeslack-http",
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()
        if self._want_socket_mode:
            self.start_socket_mode()
        return self

    def stop(self) -> None:
        """Stop serving; wakes up any request parked in `delay`."""
        self._stopping.set()
        if self.socket_mode is not None:
            self.socket_mode.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_socket_mode(self) -> FakeSocketMode:
        """Start the WebSocket fake; `apps.connections.open` then hands out its URLs."""
        from .socket_mode import FakeSocketMode

        if self.socket_mode is None:
            self.socket_mode = FakeSocketMode(app_id=self.app_id, host=self.host).start()
        return self.socket_mode

    @contextlib.contextmanager
    def socket_mode_app(self, app: Any) -> Iterator[Any]:
        """Connect a bolt ``App`` through ``SocketModeHandler``; yields the connected handler.

        On exit the link is closed from the fake's side first: slack_sdk's own ``close()``
        would otherwise wait out a blocking 3 s socket read.
        """
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket_mode = self.start_socket_mode()
        before = socket_mode.connections_total
        handler = SocketModeHandler(app, self.app_token)
        # slack_sdk's builtin Socket Mode client takes HTTPS_PROXY from the environment and,
        # unlike WebClient, ignores NO_PROXY: it would tunnel ws://127.0.0.1 through the proxy.
        handler.client.proxy = None
        handler.connect()
        try:
            socket_mode.wait_connected(count=before + 1)
            yield handler
        finally:
            handler.client.auto_reconnect_enabled = False
            socket_mode.drop_connections()
            # The client clears its socket just after we see it close; calling close() in
            # between trips a check-then-use race in slack_sdk, so let it settle first.
            deadline = time.monotonic() + 3
            while handler.client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.01)
            handler.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeSlack is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash); all fake URLs live under it."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL for ``WebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    def client(self, **kwargs: Any) -> WebClient:
        """A real `slack_sdk.WebClient` wired to this fake (kwargs are passed through)."""
        from slack_sdk import WebClient

        kwargs.setdefault("token", self.bot_token)
        return WebClient(base_url=self.api_url, **kwargs)

    # ------------------------------------------------------------------ recording
    @property
    def calls(self) -> list[Call]:
        """Every request in completion order, including failed and pseudo-method ones."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Params]:
        """Params of each call to ``method`` (e.g. ``"chat.postMessage"``), oldest first."""
        with self._lock:
            return [c.params for c in self._calls if c.method == method]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Block until ``predicate()`` is truthy (re-checked after every request); return it.

        For work an app does after ``ack()``, instead of sleeping in tests.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = [c.method for c in self._calls[-20:]]
                    raise AssertionError(
                        f"condition not met within {timeout}s; recent calls: {recent}"
                    )
                self._changed.wait(remaining)

    def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Params]:
        """Wait until ``method`` has been called ``count`` times; returns all its params."""
        self.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
        return self.calls_to(method)

    # ------------------------------------------------------------------ fault injection
    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    @staticmethod
    def _method_set(methods: str | Iterable[str]) -> frozenset[str] | None:
        if isinstance(methods, str):
            return None if methods == "*" else frozenset({methods})
        return frozenset(methods)

    def fail(
        self,
        method: str | Iterable[str] = "*",
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int | None = None,
        times: int | None = 1,
        headers: dict[str, str] | None = None,
        body: str | bytes | None = None,
        channel: str | None = None,
    ) -> Fault:
        """Make the next ``times`` calls (None: all) to ``method`` fail (in ``channel`` only, if
        given).

        ``method`` is an API method, ``"*"`` for every API method, or one of the pseudo
        methods ``"upload"``, ``"download"``, ``"response_url"``. Defaults: ``error=
        "ratelimited"`` means HTTP 429 with ``Retry-After: 0``; a 5xx status means
        ``internal_error``; any other error is HTTP 200 ``ok:false`` like Slack.
        """
        if error is None:
            error = (
                "ratelimited"
                if status in (None, 429)
                else ("internal_error" if status >= 500 else "fatal_error")
            )
        if status is None:
            status = 429 if error in ("ratelimited", "rate_limited") else 200
        if status == 429 and retry_after is None:
            retry_after = 0
        return self._add_fault(
            Fault(
                self._method_set(method),
                status=status,
                error=error,
                retry_after=retry_after,
                headers=dict(headers or {}),
                body=body,
                times=times,
                channel=channel,
            )
        )

    def fail_ratio(
        self,
        ratio: float,
        methods: str | Iterable[str] = "*",
        *,
        seed: int | None = None,
        error: str = "ratelimited",
        status: int | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Fail each matching call with probability ``ratio`` (reproducible with ``seed``)."""
        fault = self.fail(methods, error=error, status=status, retry_after=retry_after, times=None)
        fault.ratio, fault.rng = ratio, random.Random(seed)
        return fault

    def delay(
        self, method: str | Iterable[str] = "*", seconds: float = 10.0, *, times: int | None = None
    ) -> Fault:
        """Hold matching requests for ``seconds`` before answering (to force client timeouts)."""
        return self._add_fault(Fault(self._method_set(method), delay=seconds, times=times))

    def answer_late(
        self, method: str | Iterable[str], seconds: float, *, times: int | None = 1
    ) -> Fault:
        """Perform matching API calls at once but write the answer only after ``seconds``.

        Unlike `delay`, the effect (e.g. the posted message) exists while the client waits, so a
        client whose timeout is shorter gives up although Slack did the work.
        """
        return self._add_fault(Fault(self._method_set(method), answer_late=seconds, times=times))

    def drop_after(self, method: str | Iterable[str], *, times: int | None = 1) -> Fault:
        """Perform matching API calls, then close the connection without any HTTP answer.

        The client sees the connection dropped (``RemoteDisconnected``) and cannot tell whether
        the call happened; slack_sdk's default ConnectionErrorRetryHandler then sends it again.
        """
        return self._add_fault(Fault(self._method_set(method), drop=True, times=times))

    def after_call(
        self, method: str | Iterable[str], callback: AfterCall, *, times: int | None = 1
    ) -> Fault:
        """Run ``callback(method, params, response)`` after a matching API call is performed.

        It runs on the server thread before the answer is written (e.g. to kill the app between
        Slack accepting a post and the app recording it). If it raises, the error is logged
        and the answer is still written.
        """
        return self._add_fault(Fault(self._method_set(method), callback=callback, times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, method: str, params: Params) -> tuple[float, Fault | None]:
        with self._lock:
            before = [f for f in self._faults if not f.after_call]
            delay = next((f.delay for f in before if f.delay and f.take(method, params)), 0.0)
            failure = next((f for f in before if not f.delay and f.take(method, params)), None)
            return delay, failure

    def _apply_after_faults(self, method: str, params: Params, resp: _Response) -> None:
        with self._lock:
            faults = [f for f in self._faults if f.after_call and f.take(method)]
        for fault in faults:
            if fault.callback is not None:
                try:
                    fault.callback(method, params, json.loads(resp.body))
                except Exception:
                    log.exception("fakeslack after_call callback for %s failed", method)
        late = max((f.answer_late for f in faults), default=0.0)
        if late:
            self._stopping.wait(late)
        resp.drop = any(f.drop for f in faults)

    def rate_limit_posts(self, per_channel_per_second: float = 1.0, burst: int = 1) -> None:
        """Limit chat.postMessage per channel like Slack's special tier (until cleared).

        Each channel ID has a token bucket holding up to ``burst`` tokens (full at first),
        refilled at ``per_channel_per_second``. A post finding no token is not stored and gets
        HTTP 429 ``ratelimited`` with ``Retry-After`` (whole seconds until a token, at least 1);
        it is still recorded in `calls`. Other channels are unaffected.
        """
        with self._lock:
            self._post_rate = (per_channel_per_second, burst)
            self._post_tokens.clear()

    def clear_rate_limits(self) -> None:
        with self._lock:
            self._post_rate = None
            self._post_tokens.clear()

    def _take_post_token(self, channel_id: str) -> None:
        if self._post_rate is None:
            return
        rate, burst = self._post_rate
        now = time.monotonic()
        tokens, at = self._post_tokens.get(channel_id, (burst, now))
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < 1:
            self._post_tokens[channel_id] = (tokens, now)
            retry_after = max(1, math.ceil((1 - tokens) / rate))
            raise SlackError("ratelimited", 429, headers={"Retry-After": str(retry_after)})
        self._post_tokens[channel_id] = (tokens - 1, now)

    @staticmethod
    def _fault_response(fault: Fault) -> _Response:
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.body is not None:
            body = fault.body.encode() if isinstance(fault.body, str) else fault.body
            ctype = (
                "application/json; charset=utf-8"
                if body[:1] == b"{"
                else "text/html; charset=utf-8"
            )
            return _Response(fault.status, body, ctype, headers)
        return _Response(
            fault.status, _json_body({"ok": False, "error": fault.error}), headers=headers
        )

    # ------------------------------------------------------------------ custom methods
    def set_handler(self, method: str, handler: Handler | None) -> None:
        """Serve ``method`` with ``handler(params) -> dict`` (``ok: true`` is added).

        Overrides built-in methods too; raise `SlackError` for ``ok:false``. None removes it.
        """
        with self._lock:
            if handler is None:
                self._custom.pop(method, None)
            else:
                self._custom[method] = handler

    # ------------------------------------------------------------------ HTTP plumbing
    def _record(self, method: str, params: Params) -> None:
        with self._changed:
            self._calls.append(Call(method, params))
            self._changed.notify_all()

    def _serve(self, req: _RequestHandler) -> None:
        url = urlsplit(req.path)
        raw = req.read_body()
        path = url.path
        if path.startswith("/api/"):
            resp = self._serve_api(req, path[len("/api/") :], raw, url.query)
        elif path.startswith("/upload/v1/"):
            resp = self._serve_upload(path[len("/upload/v1/") :], raw)
        elif path.startswith("/files-pri/") and req.command == "GET":
            resp = self._serve_download(req, path)
        elif path in self._response_urls:
            resp = self._serve_response_url(path, raw)
        elif path == "/openid/connect/authorize" and req.command == "GET":
            status, headers, body = self.oidc.authorize(url.query)
            resp = _Response(status, body, "text/html; charset=utf-8", headers=headers)
        else:
            resp = _Response(
                404, b"<html><body>404 Not Found</body></html>", "text/html; charset=utf-8"
            )
        # The client may have given up already (e.g. its timeout fired during a `delay`).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if resp.drop:
                req.drop()
            else:
                req.write(resp)

    def _apply_faults(self, method: str, params: Params) -> _Response | None:
        delay, failure = self._take_faults(method, params)
        if delay:
            self._stopping.wait(delay)
        return self._fault_response(failure) if failure is not None else None

    def _serve_api(self, req: _RequestHandler, method: str, raw: bytes, query: str) -> _Response:
        try:
            params = self._parse_params(raw, query)
        except SlackError as e:
            self._record(method, {})
            return _Response(200, _json_body({"ok": False, "error": e.error}))
        auth = req.headers.get("Authorization", "")
        token = (
            auth[len("Bearer ") :].strip()
            if auth.startswith("Bearer ")
            else params.pop("token", None)
        )
        params.pop("token", None)
        resp = self._apply_faults(method, params)
        if resp is not None:
            self._record(method, params)
            return resp
        if method in OIDC_METHODS:
            resp = self._dispatch_oidc(method, params, auth, token)
        else:
            resp = self._dispatch(method, params, token)
        self._record(method, params)
        self._apply_after_faults(method, params, resp)
        return resp

    def _dispatch(self, method: str, params: Params, token: str | None) -> _Response:
        headers = {"x-oauth-scopes": ",".join(sorted(self.scopes))}
        with self._lock:
            handler = self._custom.get(method) or self._methods.get(method)
        try:
            if handler is None:
                raise SlackError("unknown_method", req_method=method)
            self._check_auth(method, token)
            needed = METHOD_SCOPES.get(method)
            if needed:
                headers["x-accepted-oauth-scopes"] = ",".join(needed)
                if not self.scopes.intersection(needed):
                    raise SlackError(
                        "missing_scope", needed=needed[0], provided=",".join(sorted(self.scopes))
                    )
            with self._lock:
                result = handler(params)
            return _Response(200, _json_body({"ok": True, **result}), headers=headers)
        except SlackError as e:
            body = _json_body({"ok": False, "error": e.error, **e.extra})
            return _Response(e.status, body, headers={**headers, **e.headers})
        except Exception as e:  # a bug in the fake or in a custom handler: surface it to the test
            with self._lock:
                self.errors.append(e)
            return _Response(
                500,
                _json_body({"ok": False, "error": "fakeslack_internal_error", "detail": repr(e)}),
                headers=headers,
            )

    def _dispatch_oidc(
        self, method: str, params: Params, auth: str, token: str | None
    ) -> _Response:
        """The OpenID Connect methods authenticate with the app's client credentials (token) or
        the signed-in person's access token (userInfo), not the bot token."""
        try:
            if method == "openid.connect.token":
                basic = None
                if auth.startswith("Basic "):
                    pair = base64.b64decode(auth[len("Basic ") :]).decode()
                    basic = tuple(pair.split(":", 1))
                result = self.oidc.token(params, basic)  # type: ignore[arg-type]
            else:
                result = self.oidc.user_info(token)
        except OidcError as e:
            return _Response(200, _json_body({"ok": False, "error": e.error}))
        return _Response(200, _json_body({"ok": True, **result}))

    def _check_auth(self, method: str, token: str | None) -> None:
        if method == "api.test":
            return  # the one method that needs no token
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            raise SlackError("not_authed")
        if token == wanted or (method in ("auth.test", "api.test") and token == self.app_token):
            return
        if token in (self.bot_token, self.app_token):
            raise SlackError("not_allowed_token_type")
        raise SlackError("invalid_auth")

    @staticmethod
    def _parse_params(raw: bytes, query: str) -> Params:
        params: Params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        text = raw.decode("utf-8", errors="replace").strip()
        if text.startswith("{"):  # by content, not header: auth.test sends "" as JSON
            try:
                body = json.loads(text)
            except ValueError:
                raise SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
            params.update(body)
        elif text:
            params.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
        for key in _JSON_FIELDS:
            value = params.get(key)
            if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
                # Invalid JSON stays a string; the method then reports e.g. invalid_blocks_format.
                with contextlib.suppress(ValueError):
                    params[key] = json.loads(value)
        return params

    # ------------------------------------------------------------------ ids & helpers
    def _new_ts(self) -> str:
        with self._lock:
            micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
            self._last_ts_micros = micros
        seconds, fraction = divmod(micros, 1_000_000)
        return f"{seconds}.{fraction:06d}"  # Slack's "%d.%06d" message IDs

    def _new_block_id(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
        return "".join(self._rng.choice(alphabet) for _ in range(4))

    def _new_hash(self) -> str:
        return f"{int(time.time())}.{self._rng.getrandbits(32):08x}"

    def _with_block_ids(self, blocks: Any) -> Any:
        """Copy of ``blocks`` where each block has a block_id, as Slack assigns one."""
        if not isinstance(blocks, list):
            return blocks
        out = copy.deepcopy(blocks)
        for block in out:
            if isinstance(block, dict) and "block_id" not in block:
                block["block_id"] = self._new_block_id()
        return out

    @staticmethod
    def _require(params: Params, *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise SlackError(
                    "invalid_arguments",
                    response_metadata={"messages": [f"[ERROR] missing required field: {name}"]},
                )

    @staticmethod
    def _page(p: Params, items: list[Any]) -> tuple[list[Any], str]:
        """The items ``cursor`` and ``limit`` (default 100) select, and the next cursor.

        Cursors are opaque like Slack's (base64 of ``offset:N``); "" means no more pages.
        """
        try:
            limit = int(p.get("limit") or 100)
        except (TypeError, ValueError):
            raise SlackError("invalid_limit") from None
        if limit < 1:
            raise SlackError("invalid_limit")
        start = 0
        if p.get("cursor"):
            try:
                decoded = base64.b64decode(str(p["cursor"]), validate=True).decode()
            except ValueError:
                decoded = ""
            match = re.fullmatch(r"offset:(\d+)", decoded)
            if match is None:
                raise SlackError("invalid_cursor")
            start = int(match[1])
        end = start + limit
        if end >= len(items):
            return items[start:], ""
        return items[start:end], base64.b64encode(f"offset:{end}".encode()).decode()

    # ------------------------------------------------------------------ users
    def add_user(
        self,
        user_id: str | None = None,
        name: str = "user",
        *,
        real_name: str | None = None,
        display_name: str = "",
        email: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        restricted: bool = False,
        tz: str = "Europe/London",
        tz_offset: int = 0,
    ) -> dict[str, Any]:
        """Register a user for `users.info`; returns the Slack-shaped user object.

        ``restricted=True`` makes a guest (``is_restricted``): conversations.invite refuses them.
        """
        user_id = user_id or defaults.new_id("U")
        real_name = real_name if real_name is not None else name.title()
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name,
            "display_name_normalized": display_name,
            "status_text": "",
            "status_emoji": "",
            "avatar_hash": "g0000000000",
            "team": self.team_id,
            "first_name": real_name.split(" ")[0],
            "last_name": " ".join(real_name.split(" ")[1:]),
        }
        for size in (24, 32, 48, 72, 192, 512):
            profile[f"image_{size}"] = f"https://secure.gravatar.com/avatar/{user_id}.jpg?s={size}"
        if email is not None:
            profile["email"] = email
        if is_bot:
            profile["bot_id"] = self.bot_id if user_id == self.bot_user_id else defaults.new_id("B")
            profile["api_app_id"] = self.app_id if user_id == self.bot_user_id else ""
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": restricted,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
            "is_email_confirmed": email is not None,
            "who_can_share_contact_card": "EVERYONE",
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def _user_view(self, user: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(user)
        if "users:read.email" not in self.scopes:
            out["profile"].pop("email", None)
        return out

    def _users_info(self, p: Params) -> dict[str, Any]:
        self._require(p, "user")
        user = self._users.get(p["user"])
        if user is None:
            raise SlackError("user_not_found")
        return {"user": self._user_view(user)}

    def _users_list(self, p: Params) -> dict[str, Any]:
        """Every user (deleted ones and bots too, as Slack lists them), paged by ``cursor``."""
        with self._lock:
            users = [self._user_view(user) for user in self._users.values()]
        page, next_cursor = self._page(p, users)
        return {
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_lookup_by_email(self, p: Params) -> dict[str, Any]:
        self._require(p, "email")
        for user in self._users.values():
            if user["profile"].get("email", "").lower() == str(p["email"]).lower():
                return {"user": self._user_view(user)}
        raise SlackError("users_not_found")

    def add_usergroup(
        self, group_id: str, users: Iterable[str], handle: str | None = None
    ) -> dict[str, Any]:
        """Register a user group (``S…``) for `usergroups.users.list`; returns its Slack shape.

        ``handle`` (default: the ID in lower case) is what ``<!subteam^ID|@handle>`` shows.
        """
        handle = handle or group_id.lower()
        members = list(users)
        now = int(time.time())
        group: dict[str, Any] = {
            "id": group_id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "name": handle.replace("-", " ").title(),
            "description": "",
            "handle": handle,
            "date_create": now,
            "date_update": now,
            "users": members,
            "user_count": len(members),
        }
        with self._lock:
            self._usergroups[group_id] = group
        return copy.deepcopy(group)

    def _usergroups_users_list(self, p: Params) -> dict[str, Any]:
        self._require(p, "usergroup")
        group = self._usergroups.get(p["usergroup"])
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    # ------------------------------------------------------------------ channels
    def add_channel(
        self,
        channel_id: str | None = None,
        name: str | None = None,
        *,
        is_private: bool = False,
        is_member: bool = True,
        is_archived: bool = False,
        members: Iterable[str] | None = None,
        topic: str = "",
        purpose: str = "",
    ) -> dict[str, Any]:
        """Register a channel; ``is_member=False`` / ``is_archived=True`` make posting fail.

        ``members``: when given, membership is enforced (postEphemeral, invite, members);
        otherwise every known user counts as a member.
        """
        channel_id = channel_id or defaults.new_id("G" if is_private else "C")
        name = name or channel_id.lower()
        now = int(time.time())
        channel = {
            "id": channel_id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": is_private,
            "created": now,
            "is_archived": is_archived,
            "is_general": name == "general",
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": now * 1000,
            "parent_conversation": None,
            "creator": defaults.USER_ID,
            "is_member": is_member,
            "previous_names": [],
            "topic": {"value": topic, "creator": "", "last_set": 0},
            "purpose": {"value": purpose, "creator": "", "last_set": 0},
        }
        with self._lock:
            self._channels[channel_id] = channel
            self._gone_channels.discard(channel_id)
            member_set = set(members) if members is not None else None
            if member_set is not None and is_member:
                member_set.add(self.bot_user_id)
            self._members[channel_id] = member_set
            self._messages.setdefault(channel_id, [])
        return copy.deepcopy(channel)

    def remove_channel(self, channel_id: str) -> None:
        """Forget a channel: from now on it answers `channel_not_found`."""
        with self._lock:
            self._channels.pop(channel_id, None)
            self._gone_channels.add(channel_id)

    def channel(self, channel_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._channels.get(channel_id)
            return copy.deepcopy(found) if found else None

    def channel_by_name(self, name: str) -> dict[str, Any] | None:
        """The channel called ``name`` (archived ones too), or None."""
        with self._lock:
            found = next((c for c in self._channels.values() if c.get("name") == name), None)
            return copy.deepcopy(found) if found else None

    def topic(self, channel_id: str) -> str:
        with self._lock:
            return str(self._channels[channel_id]["topic"]["value"])

    def is_archived(self, channel_id: str) -> bool:
        with self._lock:
            return bool(self._channels[channel_id]["is_archived"])

    def pinned(self, channel_id: str) -> list[str]:
        """The ts of each message pinned in the channel, in the order they were pinned."""
        with self._lock:
            return list(self._pins.get(channel_id, {}))

    def dm_channel(self, user_id: str) -> str:
        """The D… channel ID of the bot's DM with ``user_id`` (created on first use)."""
        with self._lock:
            if user_id not in self._dms:
                dm_id = defaults.new_id("D")
                self._dms[user_id] = dm_id
                self._channels[dm_id] = {
                    "id": dm_id,
                    "created": int(time.time()),
                    "is_archived": False,
                    "is_im": True,
                    "is_org_shared": False,
                    "context_team_id": self.team_id,
                    "updated": 0,
                    "user": user_id,
                    "is_user_deleted": False,
                    "priority": 0,
                }
                self._members[dm_id] = {self.bot_user_id, user_id}
                self._messages.setdefault(dm_id, [])
            return self._dms[user_id]

    def _channel(self, value: Any, *, allow_user: bool = False) -> dict[str, Any]:
        """Resolve an ID (or #name, or a user ID for DMs) to the stored channel dict."""
        if not isinstance(value, str) or not value:
            raise SlackError("channel_not_found")
        if value in self._channels:
            return self._channels[value]
        if allow_user and re.fullmatch(r"[UW][A-Z0-9]{2,}", value) and value in self._users:
            return self._channels[self.dm_channel(value)]
        name = value.lstrip("#")
        for channel in self._channels.values():
            if channel.get("name") == name:
                return channel
        if (
            not self.strict_channels
            and value not in self._gone_channels
            and re.fullmatch(r"[CG][A-Z0-9]{2,}", value)
        ):
            self.add_channel(value, is_private=value.startswith("G"))
            return self._channels[value]
        raise SlackError("channel_not_found")

    def _writable_channel(self, value: Any, *, allow_user: bool = True) -> dict[str, Any]:
        channel = self._channel(value, allow_user=allow_user)
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        if channel.get("is_im") and self._users.get(channel["user"], {}).get("deleted"):
            raise SlackError("account_inactive")  # what Slack answers a deactivated user's DM
        if not channel.get("is_im") and not channel.get("is_member"):
            public_ok = "chat:write.public" in self.scopes and not channel.get("is_private")
            if not public_ok:
                raise SlackError("not_in_channel")
        return channel

    def _is_member(self, channel_id: str, user_id: str) -> bool:
        members = self._members.get(channel_id)
        if members is None:
            return user_id in self._users and (
                user_id != self.bot_user_id or bool(self._channels[channel_id].get("is_member"))
            )
        return user_id in members

    def _conversations_info(self, p: Params) -> dict[str, Any]:
        channel = copy.deepcopy(self._channel(p.get("channel")))
        if _truthy(p.get("include_num_members")):
            channel["num_members"] = len(self._channel_members(channel["id"]))
        return {"channel": channel}

    def channel_members(self, channel_id: str) -> list[str]:
        """Who is in the channel now (invited, or the bot that made it)."""
        with self._lock:
            return self._channel_members(channel_id)

    def _channel_members(self, channel_id: str) -> list[str]:
        members = self._members.get(channel_id)
        if members is not None:
            return sorted(members)
        return sorted(u for u in self._users if self._is_member(channel_id, u))

    _CHANNEL_NAME = re.compile(r"[a-z0-9_\-\u00C0-\uFFFF]+")

    def _free_name(self, name: Any) -> str:
        """``name`` if a channel may be given it: Slack's rules, and no channel (even an archived
        one, even the channel being renamed) has it."""
        if not name:
            raise SlackError("invalid_name_required")
        name = str(name)
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not self._CHANNEL_NAME.fullmatch(name):
            raise SlackError("invalid_name_specials")
        if any(c.get("name") == name for c in self._channels.values()):
            raise SlackError("name_taken")
        return name

    def _conversations_create(self, p: Params) -> dict[str, Any]:
        name = self._free_name(p.get("name"))
        channel = self.add_channel(
            name=name, is_private=_truthy(p.get("is_private")), members=[self.bot_user_id]
        )
        self._channels[channel["id"]]["creator"] = self.bot_user_id
        return {"channel": copy.deepcopy(self._channels[channel["id"]])}

    def _conversations_rename(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        if not channel.get("is_member"):
            raise SlackError("not_in_channel")
        name = self._free_name(p.get("name"))
        channel["previous_names"].append(channel["name"])
        channel["name"] = channel["name_normalized"] = name
        return {"channel": copy.deepcopy(channel)}

    def _invite_error(self, user: str, members: set[str]) -> str | None:
        if user == self.bot_user_id:
            return "cant_invite_self"
        if user not in self._users:
            return "user_not_found"
        if self._users[user]["is_restricted"]:
            return "user_is_restricted"
        return "already_in_channel" if user in members else None

    def _conversations_invite(self, p: Params) -> dict[str, Any]:
        """Any user refused fails the whole call and invites nobody, unless ``force`` is set
        and someone can be invited; ``errors`` names each refused user either way."""
        channel = self._channel(p.get("channel"))
        self._require(p, "users")
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        if not channel.get("is_member"):
            raise SlackError("not_in_channel")
        users = list(dict.fromkeys(u.strip() for u in str(p["users"]).split(",") if u.strip()))
        members = self._members.get(channel["id"])
        if members is None:  # untracked so far: from now on only invited users are members
            members = {self.bot_user_id}
        errors = [
            {"user": u, "ok": False, "error": error}
            for u in users
            if (error := self._invite_error(u, members))
        ]
        refused = {e["user"] for e in errors}
        valid = [u for u in users if u not in refused]
        if errors and not (valid and _truthy(p.get("force"))):
            raise SlackError(errors[0]["error"], errors=errors)
        self._members[channel["id"]] = members | set(valid)
        result: dict[str, Any] = {"channel": copy.deepcopy(channel)}
        if errors:
            result["errors"] = errors
        return result

    def _conversations_join(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        if channel.get("is_private") or channel.get("is_im"):
            raise SlackError("method_not_supported_for_channel_type")
        if channel.get("is_archived"):
            raise SlackError("is_archived")
        result: dict[str, Any] = {}
        if channel["is_member"]:
            result = {
                "warning": "already_in_channel",
                "response_metadata": {"warnings": ["already_in_channel"]},
            }
        channel["is_member"] = True
        members = self._members.get(channel["id"])
        if members is not None:
            members.add(self.bot_user_id)
        return {"channel": copy.deepcopy(channel), **result}

    def _conversations_archive(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        if channel.get("is_archived"):
            raise SlackError("already_archived")
        if not channel.get("is_member"):
            raise SlackError("not_in_channel")
        channel["is_archived"] = True
        return {}

    def _conversations_set_topic(self, p: Params) -> dict[str, Any]:
        channel = self._writable_channel(p.get("channel"), allow_user=False)
        topic = str(p.get("topic", ""))
        if len(topic) > 250:
            raise SlackError("too_long")
        channel["topic"] = {
            "value": topic,
            "creator": self.bot_user_id,
            "last_set": int(time.time()),
        }
        return {"channel": copy.deepcopy(channel)}

    def _conversations_members(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        return {
            "members": self._channel_members(channel["id"]),
            "response_metadata": {"next_cursor": ""},
        }

    _CONVERSATION_TYPES = frozenset({"public_channel", "private_channel", "mpim", "im"})

    @staticmethod
    def _conversation_type(channel: dict[str, Any]) -> str:
        if channel.get("is_im"):
            return "im"
        if channel.get("is_mpim"):
            return "mpim"
        return "private_channel" if channel.get("is_private") else "public_channel"

    def _users_conversations(self, p: Params) -> dict[str, Any]:
        types = {t.strip() for t in str(p.get("types") or "public_channel").split(",") if t.strip()}
        if not types <= self._CONVERSATION_TYPES:
            raise SlackError("invalid_types")
        skip_archived = _truthy(p.get("exclude_archived"))
        mine = [
            c
            for c in self._channels.values()
            if (c.get("is_im") or c.get("is_member"))
            and self._conversation_type(c) in types
            and not (skip_archived and c.get("is_archived"))
        ]
        page, next_cursor = self._page(p, mine)
        return {"channels": copy.deepcopy(page), "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_open(self, p: Params) -> dict[str, Any]:
        users = [u for u in str(p.get("users", "")).split(",") if u]
        if len(users) != 1:
            raise SlackError("not_implemented" if users else "users_list_not_supplied")
        if users[0] not in self._users:
            raise SlackError("user_not_found")
        return {"channel": {"id": self.dm_channel(users[0])}}

    def _readable_channel(self, value: Any) -> dict[str, Any]:
        channel = self._channel(value)
        if not channel.get("is_im") and not channel.get("is_member"):
            raise SlackError("not_in_channel")
        return channel

    def _visible(self, channel_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` without those stored less than `visibility_delay` seconds ago."""
        cutoff = time.monotonic() - self.visibility_delay
        return [m for m in messages if self._posted.get((channel_id, m["ts"]), cutoff) <= cutoff]

    @staticmethod
    def _in_window(p: Params, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` whose ts is between ``oldest`` and ``latest`` (as numbers), like Slack."""
        bounds = []
        for name, default in (("oldest", 0.0), ("latest", math.inf)):
            try:
                bounds.append(float(p.get(name) or default))
            except (TypeError, ValueError):
                raise SlackError(f"invalid_ts_{name}") from None
        oldest, latest = bounds
        if _truthy(p.get("inclusive")):
            return [m for m in messages if oldest <= float(m["ts"]) <= latest]
        return [m for m in messages if oldest < float(m["ts"]) < latest]

    @staticmethod
    def _listed(p: Params, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Copies as history/replies return them: ``metadata`` only if include_all_metadata."""
        out = copy.deepcopy(messages)
        if not _truthy(p.get("include_all_metadata")):
            for m in out:
                m.pop("metadata", None)
        return out

    def _history_channel(self, value: Any) -> dict[str, Any]:
        """A channel whose messages the bot may read: a member, with its type's history scope."""
        channel = self._readable_channel(value)
        needed = HISTORY_SCOPES[self._conversation_type(channel)]
        if needed not in self.scopes:
            raise SlackError("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        return channel

    def _conversations_history(self, p: Params) -> dict[str, Any]:
        channel = self._history_channel(p.get("channel"))
        top = [
            m
            for m in self._messages.get(channel["id"], [])
            if "thread_ts" not in m
            or m["thread_ts"] == m["ts"]
            or m.get("subtype") == "thread_broadcast"
        ]
        top = self._in_window(p, self._visible(channel["id"], top))
        limit = int(p.get("limit") or 100)
        newest_first = list(reversed(top))
        return {
            "messages": self._listed(p, newest_first[:limit]),
            "has_more": len(top) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    def _conversations_replies(self, p: Params) -> dict[str, Any]:
        channel = self._history_channel(p.get("channel"))
        parent = self._find_message(channel["id"], p.get("ts"))
        if parent is None or not self._visible(channel["id"], [parent]):
            raise SlackError("thread_not_found")
        root = parent.get("thread_ts", parent["ts"])
        thread = self._visible(
            channel["id"],
            [
                m
                for m in self._messages[channel["id"]]
                if m["ts"] == root or m.get("thread_ts") == root
            ],
        )
        head = [m for m in thread if m["ts"] == root]  # always first, whatever the window
        replies = self._in_window(p, [m for m in thread if m["ts"] != root])
        limit = int(p.get("limit") or 1000)
        return {
            "messages": self._listed(p, head + replies[:limit]),
            "has_more": len(replies) > limit,
            "response_metadata": {"next_cursor": ""},
        }

    # ------------------------------------------------------------------ messages
    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str = defaults.USER_ID,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Seed a message posted by a human (e.g. to reply to or to run a message shortcut on)."""
        with self._lock:
            msg: dict[str, Any] = {
                "type": "message",
                "user": user,
                "text": text,
                "ts": self._new_ts(),
                "team": self.team_id,
            }
            if blocks is not None:
                msg["blocks"] = self._with_block_ids(blocks)
            if files:
                msg["files"], msg["upload"], msg["subtype"] = (
                    copy.deepcopy(files),
                    False,
                    "file_share",
                )
            channel_id = self._channel(channel, allow_user=True)["id"]
            self._store_message(channel_id, msg, thread_ts)
            return copy.deepcopy(msg)

    def messages(self, channel: str, *, include_replies: bool = False) -> list[dict[str, Any]]:
        """Messages in ``channel`` oldest first; thread replies only if broadcast or asked for."""
        with self._lock:
            channel_id = self._dms.get(channel, channel)
            out = []
            for m in self._messages.get(channel_id, []):
                is_reply = "thread_ts" in m and m["thread_ts"] != m["ts"]
                if include_replies or not is_reply or m.get("subtype") == "thread_broadcast":
                    out.append(m)
            return copy.deepcopy(out)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current version of one message (after any chat.update), or None."""
        with self._lock:
            found = self._find_message(self._dms.get(channel, channel), ts)
            return copy.deepcopy(found) if found else None

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """Replies in the thread rooted at ``ts`` (the parent itself excluded), oldest first."""
        with self._lock:
            channel_id = self._dms.get(channel, channel)
            return copy.deepcopy(
                [
                    m
                    for m in self._messages.get(channel_id, [])
                    if m.get("thread_ts") == ts and m["ts"] != ts
                ]
            )

    def ephemeral_messages(
        self, channel: str | None = None, user: str | None = None
    ) -> list[dict[str, Any]]:
        """Ephemeral messages: ``{channel, user, message_ts, text, blocks, thread_ts}`` dicts."""
        with self._lock:
            return copy.deepcopy(
                [
                    e
                    for e in self._ephemeral
                    if (channel is None or e["channel"] == channel)
                    and (user is None or e["user"] == user)
                ]
            )

    def _find_message(self, channel_id: str, ts: Any) -> dict[str, Any] | None:
        for m in self._messages.get(channel_id, []):
            if m["ts"] == ts:
                return m
        return None

    def _store_message(
        self, channel_id: str, msg: dict[str, Any], thread_ts: Any, broadcast: bool = False
    ) -> None:
        if thread_ts:
            parent = self._find_message(channel_id, thread_ts)
            if parent is not None and parent.get("thread_ts", parent["ts"]) != parent["ts"]:
                parent = self._find_message(channel_id, parent["thread_ts"])  # replying to a reply
            root_ts = parent["ts"] if parent is not None else str(thread_ts)
            msg["thread_ts"] = root_ts
            if parent is not None:
                msg["parent_user_id"] = parent.get("user")
                parent["thread_ts"] = root_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if msg.get("user") not in users:
                    users.append(msg.get("user"))
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = msg["ts"]
            if broadcast:
                msg["subtype"] = "thread_broadcast"
                msg["root"] = copy.deepcopy(parent) if parent is not None else {}
        self._messages.setdefault(channel_id, []).append(msg)
        self._posted[(channel_id, msg["ts"])] = time.monotonic()

    def posted_at(self, channel: str, ts: str) -> float | None:
        """`time.monotonic()` when message ``ts`` was stored, or None (to measure pacing)."""
        with self._lock:
            return self._posted.get((self._dms.get(channel, channel), ts))

    def _bot_message(self, text: str, ts: str) -> dict[str, Any]:
        return {
            "user": self.bot_user_id,
            "type": "message",
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "text": text,
            "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "updated": 0,
                "icons": {},
            },
        }

    def _check_message_content(self, p: Params, *, need_content: bool = True) -> None:
        blocks = p.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            raise SlackError("invalid_blocks_format")
        if need_content and not (p.get("text") or blocks or p.get("attachments")):
            raise SlackError("no_text")
        if blocks:
            problems = blockkit.validate_message_blocks(blocks)
            if problems:
                raise SlackError("invalid_blocks", response_metadata={"messages": problems})
            if blockkit.message_text_length(blocks) > self.msg_blocks_text_limit:
                raise SlackError("msg_blocks_too_long")
        attachments = p.get("attachments")
        if attachments is not None and not isinstance(attachments, list):
            raise SlackError("invalid_attachments")

    def _chat_post_message(self, p: Params) -> dict[str, Any]:
        channel = self._writable_channel(p.get("channel"))
        self._take_post_token(channel["id"])
        self._check_message_content(p)
        text = str(p.get("text") or "")[:40_000]  # Slack truncates rather than rejects
        msg = self._bot_message(text, self._new_ts())
        if p.get("blocks"):
            msg["blocks"] = self._with_block_ids(p["blocks"])
        if p.get("attachments"):
            msg["attachments"] = copy.deepcopy(p["attachments"])
        if isinstance(p.get("metadata"), dict):
            msg["metadata"] = copy.deepcopy(p["metadata"])
        broadcast = bool(p.get("thread_ts")) and _truthy(p.get("reply_broadcast"))
        self._store_message(channel["id"], msg, p.get("thread_ts"), broadcast)
        return {"channel": channel["id"], "ts": msg["ts"], "message": copy.deepcopy(msg)}

    def _own_message(self, p: Params, not_own_error: str) -> tuple[dict[str, Any], dict[str, Any]]:
        channel = self._channel(p.get("channel"), allow_user=True)
        msg = self._find_message(channel["id"], p.get("ts"))
        if msg is None:
            raise SlackError("message_not_found")
        if msg.get("user") != self.bot_user_id:
            raise SlackError(not_own_error)
        return channel, msg

    def _chat_update(self, p: Params) -> dict[str, Any]:
        channel, msg = self._own_message(p, "cant_update_message")
        if len(str(p.get("text") or "")) > 4000:
            raise SlackError("msg_too_long")
        self._check_message_content(p, need_content=False)
        if "text" in p:
            msg["text"] = str(p["text"] or "")
        if "blocks" in p:
            msg["blocks"] = self._with_block_ids(p["blocks"] or [])
        if "attachments" in p:
            msg["attachments"] = copy.deepcopy(p["attachments"] or [])
        if isinstance(p.get("metadata"), dict):
            msg["metadata"] = copy.deepcopy(p["metadata"])
        msg["edited"] = {"user": self.bot_user_id, "ts": self._new_ts()}
        return {
            "channel": channel["id"],
            "ts": msg["ts"],
            "text": msg.get("text", ""),
            "message": copy.deepcopy(msg),
        }

    def _chat_delete(self, p: Params) -> dict[str, Any]:
        channel, msg = self._own_message(p, "cant_delete_message")
        self._messages[channel["id"]].remove(msg)
        self._pins.get(channel["id"], {}).pop(msg["ts"], None)  # Slack drops a deleted pin
        return {"channel": channel["id"], "ts": msg["ts"]}

    def _chat_post_ephemeral(self, p: Params) -> dict[str, Any]:
        channel = self._writable_channel(p.get("channel"))
        self._require(p, "user")
        if not self._is_member(channel["id"], p["user"]):
            raise SlackError("user_not_in_channel")
        self._check_message_content(p)
        ts = self._new_ts()
        self._ephemeral.append(
            {
                "channel": channel["id"],
                "user": p["user"],
                "message_ts": ts,
                "text": p.get("text", ""),
                "blocks": copy.deepcopy(p.get("blocks")),
                "thread_ts": p.get("thread_ts"),
            }
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, p: Params) -> dict[str, Any]:
        channel = self._channel(p.get("channel"))
        msg = self._find_message(channel["id"], p.get("message_ts"))
        if msg is None:
            raise SlackError("message_not_found")
        link = f"{self.base_url}/archives/{channel['id']}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel['id']}"
        return {"channel": channel["id"], "permalink": link}

    # ------------------------------------------------------------------ pins
    def _pin_target(self, p: Params) -> tuple[str, str]:
        channel = self._readable_channel(p.get("channel"))
        ts = p.get("timestamp")
        if not ts:
            raise SlackError("no_item_specified")
        if self._find_message(channel["id"], ts) is None:
            raise SlackError("message_not_found")
        return channel["id"], str(ts)

    def _pins_add(self, p: Params) -> dict[str, Any]:
        channel_id, ts = self._pin_target(p)
        pins = self._pins.setdefault(channel_id, {})
        if ts in pins:
            raise SlackError("already_pinned")
        pins[ts] = int(time.time())
        return {}

    def _pins_remove(self, p: Params) -> dict[str, Any]:
        channel_id, ts = self._pin_target(p)
        if self._pins.get(channel_id, {}).pop(ts, None) is None:
            raise SlackError("no_pin")
        return {}

    def _pins_list(self, p: Params) -> dict[str, Any]:
        channel_id = self._channel(p.get("channel"))["id"]
        items = []
        for ts, created in self._pins.get(channel_id, {}).items():
            message = copy.deepcopy(self._find_message(channel_id, ts))
            message["pinned_to"] = [channel_id]
            items.append(
                {
                    "type": "message",
                    "created": created,
                    "created_by": self.bot_user_id,
                    "channel": channel_id,
                    "message": message,
                }
            )
        return {"items": items}

    # ------------------------------------------------------------------ auth & socket mode
    def _auth_test(self, p: Params) -> dict[str, Any]:
        return {
            "url": f"{self.base_url}/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, p: Params) -> dict[str, Any]:
        if self.socket_mode is None:
            # Fake-specific: real Slack has no such state; start it with socket_mode=True.
            raise SlackError("fakeslack_socket_mode_not_started")
        return {"url": self.socket_mode.new_url()}

    # ------------------------------------------------------------------ views
    def new_trigger_id(self, user: str = defaults.USER_ID, *, age: float = 0.0) -> str:
        """Issue a single-use trigger_id for ``user``; ``age`` back-dates it (expired if > ttl)."""
        trigger_id = (
            f"{secrets.randbelow(10**13)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"
        )
        with self._lock:
            self._triggers[trigger_id] = {
                "user": user,
                "issued": time.monotonic() - age,
                "used": False,
            }
        return trigger_id

    def _use_trigger(self, p: Params) -> str:
        trigger_id = p.get("trigger_id") or p.get("interactivity_pointer")
        record = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if record is None:
            raise SlackError("invalid_trigger_id")
        if record["used"]:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - record["issued"] > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        record["used"] = True
        return record["user"]

    def _checked_view(self, p: Params) -> dict[str, Any]:
        view = p.get("view")
        if not isinstance(view, dict):
            raise SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: view"]},
            )
        if blockkit.view_size(view) > blockkit.MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        problems = blockkit.validate_view(view)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        external_id = view.get("external_id")
        if external_id:
            for other_id, other in self._views.items():
                if other.get("external_id") == external_id and other_id != p.get("view_id"):
                    raise SlackError("duplicate_external_id")
        return view

    def _store_view(
        self,
        view_in: dict[str, Any],
        user: str,
        *,
        view_id: str | None = None,
        root_view_id: str | None = None,
        previous_view_id: str | None = None,
    ) -> dict[str, Any]:
        view_id = view_id or defaults.new_id("V")
        view: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view_in["type"],
            "blocks": self._with_block_ids(view_in.get("blocks", [])),
            "private_metadata": view_in.get("private_metadata", ""),
            "callback_id": view_in.get("callback_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "title": copy.deepcopy(view_in.get("title")),
            "clear_on_close": bool(view_in.get("clear_on_close", False)),
            "notify_on_close": bool(view_in.get("notify_on_close", False)),
            "close": copy.deepcopy(view_in.get("close")),
            "submit": copy.deepcopy(view_in.get("submit")),
            "previous_view_id": previous_view_id,
            "root_view_id": root_view_id or view_id,
            "app_id": self.app_id,
            "external_id": view_in.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        for extra in ("submit_disabled",):
            if extra in view_in:
                view[extra] = view_in[extra]
        self._views[view_id] = view
        self._view_owner[view_id] = user
        return view

    def _views_open(self, p: Params) -> dict[str, Any]:
        view_in = self._checked_view(p)
        user = self._use_trigger(p)
        view = self._store_view(view_in, user)
        self._stacks[user] = [view["id"]]
        return {"view": copy.deepcopy(view)}

    def _views_push(self, p: Params) -> dict[str, Any]:
        view_in = self._checked_view(p)
        user = self._use_trigger(p)
        stack = self._stacks.get(user) or []
        if not stack:
            raise SlackError("not_found")
        if len(stack) >= 3:
            raise SlackError("push_limit_reached")
        view = self._store_view(view_in, user, root_view_id=stack[0], previous_view_id=stack[-1])
        stack.append(view["id"])
        return {"view": copy.deepcopy(view)}

    def _views_update(self, p: Params) -> dict[str, Any]:
        view_id = p.get("view_id")
        if not view_id and p.get("external_id"):
            view_id = next(
                (vid for vid, v in self._views.items() if v.get("external_id") == p["external_id"]),
                None,
            )
        current = self._views.get(view_id) if view_id else None
        if view_id is None or current is None:
            raise SlackError("not_found")
        if p.get("hash") and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view_in = self._checked_view({**p, "view_id": view_id})
        view = self._store_view(
            view_in,
            self._view_owner[view_id],
            view_id=view_id,
            root_view_id=current["root_view_id"],
            previous_view_id=current["previous_view_id"],
        )
        return {"view": copy.deepcopy(view)}

    def _views_publish(self, p: Params) -> dict[str, Any]:
        if not self.home_tab_enabled:
            raise SlackError("not_enabled")
        self._require(p, "user_id")
        view_in = self._checked_view(p)
        if view_in.get("type") != "home":
            raise SlackError(
                "invalid_arguments",
                response_metadata={
                    "messages": [
                        "[ERROR] must be a valid enum value (home) [json-pointer:/view/type]"
                    ]
                },
            )
        user = p["user_id"]
        current_id = self._home.get(user)
        if current_id and p.get("hash") and p["hash"] != self._views[current_id]["hash"]:
            raise SlackError("hash_conflict")
        view = self._store_view(view_in, user, view_id=current_id)
        self._home[user] = view["id"]
        return {"view": copy.deepcopy(view)}

    @property
    def views(self) -> dict[str, list[dict[str, Any]]]:
        """Open modal stacks by user ID (bottom first), as opened/pushed/updated by the app."""
        with self._lock:
            return {
                user: [copy.deepcopy(self._views[v]) for v in stack]
                for user, stack in self._stacks.items()
                if stack
            }

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """Published Home tab view by user ID."""
        with self._lock:
            return {user: copy.deepcopy(self._views[v]) for user, v in self._home.items()}

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found else None

    def top_view(self, user: str = defaults.USER_ID) -> dict[str, Any] | None:
        """The modal currently shown to ``user`` (top of the stack), or None."""
        with self._lock:
            stack = self._stacks.get(user)
            return copy.deepcopy(self._views[stack[-1]]) if stack else None

    def close_views(self, user: str = defaults.USER_ID) -> None:
        """Simulate the user closing all modals (Slack does this after a final submission)."""
        with self._lock:
            self._stacks.pop(user, None)

    # ------------------------------------------------------------------ files
    def _file_urls(self, file_id: str, name: str, user: str) -> dict[str, str]:
        quoted = quote(name)
        base = f"{self.base_url}/files-pri/{self.team_id}-{file_id}"
        return {
            "url_private": f"{base}/{quoted}",
            "url_private_download": f"{base}/download/{quoted}",
            "permalink": f"{self.base_url}/files/{user}/{file_id}/{quoted}",
            "permalink_public": f"{self.base_url}/{self.team_id}-{file_id}-{secrets.token_hex(5)}",
        }

    def add_file(
        self,
        name: str,
        content: bytes | str,
        mimetype: str | None = None,
        *,
        user: str = defaults.USER_ID,
        title: str | None = None,
        filetype: str | None = None,
        chunked: bool = False,
        file_id: str | None = None,
    ) -> dict[str, Any]:
        """Host a file (as if a user uploaded it); returns its full Slack file object.

        ``chunked=True`` serves downloads with ``Transfer-Encoding: chunked``.
        """
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mimetype = (
            mimetype
            or mimetypes.guess_type(name)[0]
            or {"log": "text/plain", "md": "text/markdown"}.get(ext, "application/octet-stream")
        )
        filetype = filetype or {"txt": "text", "log": "text", "jpeg": "jpg"}.get(
            ext, ext or "binary"
        )
        file_id = file_id or defaults.new_id("F")
        now = int(time.time())
        meta: dict[str, Any] = {
            "id": file_id,
            "created": now,
            "timestamp": now,
            "name": name,
            "title": title or name,
            "mimetype": mimetype,
            "filetype": filetype,
            "pretty_type": filetype.upper(),
            "user": user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(data),
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            **self._file_urls(file_id, name, user),
            "comments_count": 0,
            "is_starred": False,
            "shares": {},
            "channels": [],
            "groups": [],
            "ims": [],
            "has_more_shares": False,
            "has_rich_preview": False,
            "file_access": "visible",
        }
        with self._lock:
            self._files[file_id] = _StoredFile(meta, data, chunked)
        return copy.deepcopy(meta)

    def file(self, file_id: str) -> dict[str, Any] | None:
        """The stored file object (with any shares), or None."""
        with self._lock:
            stored = self._files.get(file_id)
            return copy.deepcopy(stored.meta) if stored else None

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].content

    @property
    def downloads(self) -> list[tuple[str, bool]]:
        """``(file_id, authorized)`` for every download attempt, in order."""
        with self._lock:
            return list(self._downloads)

    def _files_info(self, p: Params) -> dict[str, Any]:
        stored = self._files.get(p.get("file") or "")
        if stored is None:
            raise SlackError("file_not_found")
        return {
            "file": copy.deepcopy(stored.meta),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    def _files_get_upload_url_external(self, p: Params) -> dict[str, Any]:
        if not p.get("filename") or p.get("length") in (None, ""):
            raise SlackError("missing_argument")
        try:
            length = int(p["length"])
        except (TypeError, ValueError):
            raise SlackError("invalid_arguments") from None
        file_id = defaults.new_id("F")
        token = uuid.uuid4().hex
        self._uploads[token] = {
            "file_id": file_id,
            "filename": p["filename"],
            "length": length,
            "alt_txt": p.get("alt_txt"),
            "snippet_type": p.get("snippet_type"),
            "data": None,
        }
        return {"upload_url": f"{self.base_url}/upload/v1/{token}", "file_id": file_id}

    def _serve_upload(self, token: str, raw: bytes) -> _Response:
        # No auth here, like Slack: the upload URL itself is the credential.
        resp = self._apply_faults(UPLOAD, {})
        with self._lock:
            upload = self._uploads.get(token)
            if resp is None and upload is not None:
                upload["data"] = raw
        params = {"file_id": upload["file_id"] if upload else None, "size": len(raw)}
        self._record(UPLOAD, params)
        if resp is not None:
            return resp
        if upload is None:
            return _Response(404, b"invalid upload url", "text/plain; charset=utf-8")
        return _Response(200, f"OK - {len(raw)}".encode(), "text/plain; charset=utf-8")

    def _files_complete_upload_external(self, p: Params) -> dict[str, Any]:
        items = p.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        by_file_id = {u["file_id"]: (tok, u) for tok, u in self._uploads.items()}
        for item in items:
            pending = by_file_id.get(item.get("id")) if isinstance(item, dict) else None
            if pending is None or pending[1]["data"] is None:
                raise SlackError("file_not_found")
        targets = []
        if p.get("channel_id"):
            targets.append(p["channel_id"])
        extra = p.get("channels") or []
        targets += [c for c in (extra.split(",") if isinstance(extra, str) else extra) if c]
        channels = [self._writable_channel(c) for c in targets]
        if p.get("blocks") is not None:
            self._check_message_content(p, need_content=False)
        files = []
        for item in items:
            token, upload = by_file_id[item["id"]]
            del self._uploads[token]
            meta = self.add_file(
                upload["filename"],
                upload["data"],
                user=self.bot_user_id,
                title=item.get("title") or upload["filename"],
                file_id=upload["file_id"],
            )
            if upload.get("alt_txt"):
                self._files[meta["id"]].meta["alt_txt"] = upload["alt_txt"]
            files.append(self._files[meta["id"]].meta)
        for channel in channels:
            msg = self._bot_message(str(p.get("initial_comment") or ""), self._new_ts())
            msg.update({"files": copy.deepcopy(files), "upload": True, "display_as_bot": False})
            if p.get("blocks"):
                msg["blocks"] = self._with_block_ids(p["blocks"])
            self._store_message(channel["id"], msg, p.get("thread_ts"))
            for meta in files:
                kind = "private" if channel.get("is_private") or channel.get("is_im") else "public"
                share = {
                    "reply_users": [],
                    "reply_users_count": 0,
                    "reply_count": 0,
                    "ts": msg["ts"],
                    "channel_name": channel.get("name", ""),
                    "team_id": self.team_id,
                    "share_user_id": self.bot_user_id,
                    "source": "UNKNOWN",
                }
                if msg.get("thread_ts"):
                    share["thread_ts"] = msg["thread_ts"]
                meta["shares"].setdefault(kind, {}).setdefault(channel["id"], []).append(share)
                key = (
                    "ims"
                    if channel.get("is_im")
                    else ("groups" if kind == "private" else "channels")
                )
                meta[key].append(channel["id"])
        return {"files": copy.deepcopy(files)}

    _DOWNLOAD_PATH = re.compile(
        r"^/files-pri/(?P<team>[A-Z0-9]+)-(?P<file>[A-Z0-9]+)/(?:download/)?(?P<name>[^/]+)$"
    )

    def _serve_download(self, req: _RequestHandler, path: str) -> _Response:
        match = self._DOWNLOAD_PATH.match(path)
        file_id = match["file"] if match else ""
        auth = req.headers.get("Authorization", "")
        authorized = auth == f"Bearer {self.bot_token}" and "files:read" in self.scopes
        with self._lock:
            self._downloads.append((file_id, authorized))
        resp = self._apply_faults(DOWNLOAD, {})
        self._record(DOWNLOAD, {"file_id": file_id, "authorized": authorized})
        if resp is not None:
            return resp
        if not authorized:
            # Real Slack: 200 + a sign-in page, not 401/403 (a classic source of bugs).
            return _Response(200, LOGIN_PAGE.encode(), "text/html; charset=utf-8")
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or match is None or unquote(match["name"]) != stored.meta["name"]:
            return _Response(
                404, b"<html><body>File not found</body></html>", "text/html; charset=utf-8"
            )
        headers = {}
        if "/download/" in path:
            headers["Content-Disposition"] = f'attachment; filename="{quote(stored.meta["name"])}"'
        if stored.chunked:
            data = stored.content
            chunks = (data[i : i + 8192] for i in range(0, len(data), 8192))
            return _Response(200, b"", stored.meta["mimetype"], headers, chunks=chunks)
        return _Response(200, stored.content, stored.meta["mimetype"], headers)

    # ------------------------------------------------------------------ response_url
    def new_response_url(self, kind: str = "commands") -> str:
        """A fresh response_url (``kind``: "commands" or "actions") that records what is posted."""
        path = f"/{kind}/{self.team_id}/{secrets.randbelow(10**12)}/{secrets.token_urlsafe(18)}"
        with self._lock:
            self._response_urls[path] = []
        return f"{self.base_url}{path}"

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies posted to ``url`` (or to every response_url), oldest first."""
        with self._lock:
            path = urlsplit(url).path if url is not None else None
            return copy.deepcopy([body for p, body in self._response_posts if path in (None, p)])

    def _serve_response_url(self, path: str, raw: bytes) -> _Response:
        resp = self._apply_faults(RESPONSE_URL, {})
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
        except ValueError:
            body = {"_raw": raw.decode("utf-8", errors="replace")}
        if not isinstance(body, dict):
            body = {"_raw": body}
        if resp is None:
            with self._lock:
                posts = self._response_urls[path]
                if len(posts) >= 5:  # Slack allows 5 uses within 30 minutes
                    resp = _Response(404, _json_body({"ok": False, "error": "used_url"}))
                elif body.get("blocks") and blockkit.validate_message_blocks(body["blocks"]):
                    resp = _Response(400, _json_body({"ok": False, "error": "invalid_blocks"}))
                else:
                    posts.append(body)
                    self._response_posts.append((path, body))
                    resp = _Response(200, _json_body({"ok": True}))
        self._record(RESPONSE_URL, body)
        return resp

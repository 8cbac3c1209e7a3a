"""A loopback Socket Mode endpoint for slack_sdk's builtin ``SocketModeClient``.

`FakeSlack(socket_mode=True)` starts one and its ``apps.connections.open`` hands out
single-use ``ws://127.0.0.1:PORT/link/?ticket=…`` URLs (the builtin client speaks plain
``ws://`` to any port but 443). Tests push envelopes and wait for the app's acks.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from . import defaults

_RESPONSE_PAYLOAD_INTERACTIONS = ("view_submission", "block_suggestion")


def envelope_type(payload: dict[str, Any]) -> str:
    """The Socket Mode envelope type Slack would use for an HTTP-mode payload."""
    if "command" in payload:
        return "slash_commands"
    if payload.get("type") in ("event_callback", "url_verification", "app_rate_limited"):
        return "events_api"
    return "interactive"


class FakeSocketMode:
    """WebSocket server speaking Slack's Socket Mode protocol (hello, envelopes, acks)."""

    def __init__(self, *, app_id: str = defaults.APP_ID, host: str = "127.0.0.1") -> None:
        self.app_id = app_id
        self.host = host
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._tickets: set[str] = set()
        self._live: list[ServerConnection] = []
        self._retiring: list[ServerConnection] = []  # told to reconnect via a disconnect frame
        self._connections_total = 0
        self._acks: dict[str, dict[str, Any]] = {}
        self._received: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSocketMode:
        # No server pings: the slack_sdk client pings us (and we answer) every few seconds.
        self._server = serve(
            self._handle,
            self.host,
            0,
            process_request=self._check_ticket,
            ping_interval=None,
            compression=None,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fakeslack-ws", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.close()
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeSocketMode is not started"
        return self._server.socket.getsockname()[1]

    def new_url(self) -> str:
        """Issue a single-use connection URL (what ``apps.connections.open`` returns)."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"

    # ------------------------------------------------------------------ server side
    def _check_ticket(self, conn: ServerConnection, request: Request) -> Response | None:
        ticket = parse_qs(urlsplit(request.path).query).get("ticket", [""])[0]
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return None
        return conn.respond(401, "invalid or used ticket\n")

    def _handle(self, conn: ServerConnection) -> None:
        with self._changed:
            self._live.append(conn)
            num = len(self._live)
        try:
            conn.send(
                json.dumps(
                    {
                        "type": "hello",
                        "num_connections": num,
                        "debug_info": {
                            "host": "applink-fakeslack",
                            "build_number": 1,
                            "approximate_connection_time": 18060,
                        },
                        "connection_info": {"app_id": self.app_id},
                    }
                )
            )
            with self._changed:
                self._connections_total += 1
                retiring, self._retiring = self._retiring, []
                self._changed.notify_all()
            # Like Slack, drop links we asked to refresh once the client is back. This also
            # unblocks slack_sdk, which otherwise waits out a 3 s read on the old socket.
            for old in retiring:
                threading.Thread(target=old.close, daemon=True).start()
            for raw in conn:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                with self._changed:
                    self._received.append(frame)
                    if isinstance(frame, dict) and frame.get("envelope_id"):
                        self._acks[frame["envelope_id"]] = frame
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if conn in self._live:
                    self._live.remove(conn)
                self._changed.notify_all()

    # ------------------------------------------------------------------ test side
    @property
    def connections_total(self) -> int:
        """How many clients have connected (and been greeted with ``hello``) so far."""
        with self._lock:
            return self._connections_total

    @property
    def live_connections(self) -> int:
        with self._lock:
            return len(self._live)

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every JSON frame the app sent, in order."""
        with self._lock:
            return list(self._received)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Every envelope / frame sent to the app, in order."""
        with self._lock:
            return list(self._sent)

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"Socket Mode fake: {what} not seen within {timeout}s")
                self._changed.wait(remaining)

    def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` connections have been made in total (reconnects count)."""
        self._wait(
            lambda: self._connections_total >= count and self._live,
            timeout,
            f"{count} connection(s)",
        )

    def _send(self, frame: dict[str, Any]) -> None:
        with self._lock:
            if not self._live:
                raise RuntimeError("no Socket Mode client is connected")
            conn = self._live[-1]  # the newest connection, as after a refresh
            self._sent.append(frame)
        conn.send(json.dumps(frame))

    def send_envelope(
        self,
        type: str | None,  # Slack's field name
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int | None = None,
        retry_reason: str | None = None,
        envelope_id: str | None = None,
    ) -> str:
        """Deliver ``payload`` in an envelope; returns its envelope_id.

        ``type``: "slash_commands", "interactive" or "events_api" (None: inferred from the
        payload). Defaults follow real Slack: slash commands, view_submission and
        block_suggestion accept a response payload; events_api envelopes carry
        ``retry_attempt: 0, retry_reason: ""`` unless given.
        """
        kind = type or envelope_type(payload)
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands" or (
                kind == "interactive" and payload.get("type") in _RESPONSE_PAYLOAD_INTERACTIONS
            )
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id or str(uuid.uuid4()),
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
        }
        if kind == "events_api" or retry_attempt is not None:
            envelope["retry_attempt"] = retry_attempt or 0
            envelope["retry_reason"] = retry_reason or ""
        self._send(envelope)
        return envelope["envelope_id"]

    def wait_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The app's ack frame for ``envelope_id`` (``{"envelope_id", "payload"?}``)."""
        self._wait(lambda: envelope_id in self._acks, timeout, f"ack for {envelope_id}")
        with self._lock:
            return self._acks[envelope_id]

    def acked(self, envelope_id: str) -> bool:
        with self._lock:
            return envelope_id in self._acks

    def disconnect(self, reason: str = "refresh_requested") -> None:
        """Send a ``disconnect`` frame; slack_sdk then reconnects via apps.connections.open."""
        with self._lock:
            self._retiring = list(self._live)
        self._send(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fakeslack"}}
        )

    def drop_connections(self) -> None:
        """Close every live connection from the server side (slack_sdk will reconnect)."""
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.close(code=1011, reason="fakeslack drop")

"""A loopback JSON service for the trackers' fakes: routes, an auth check, a call log, and faults
(a status instead of the work, a late answer after the work, a connection dropped after it)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakeslack import ensure_no_proxy


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    route: str | None
    # What the fake answered (None: dropped, or not yet written).
    status: int | None = None

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Fault:
    routes: frozenset[str]
    # Answer this instead of doing the work.
    status: int | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # After the work: answer this many seconds late, or close the connection unanswered.
    late: float = 0.0
    drop: bool = False
    times: int | None = 1  # None: until cleared
    hits: int = 0


Answer = tuple[int, Any, dict[str, str]]
Handler = Callable[[Call, re.Match[str]], Answer]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class FakeService:
    """Subclasses add routes (`self.routes`) and `authorized`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.calls: list[Call] = []
        self.faults: list[Fault] = []
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = []
        self._server: _Server | None = None
        self._stopping = threading.Event()

    # --- serving --------------------------------------------------------------------------------

    def route(self, method: str, pattern: str, name: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), name, handler))

    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def unauthorized(self) -> Answer:
        return 401, {"message": "Bad credentials"}, {}

    def start(self) -> FakeService:
        ensure_no_proxy()
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- faults ---------------------------------------------------------------------------------

    def fail(
        self,
        route: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
    ) -> Fault:
        """Answer `status` (and `body`) instead of doing the work."""
        return self._add(Fault(frozenset({route}), status, body, headers or {}, times=times))

    def answer_late(self, route: str, seconds: float, *, times: int | None = 1) -> Fault:
        """Do the work, then answer only after `seconds` (a client with a shorter timeout gives
        up although the work is done)."""
        return self._add(Fault(frozenset({route}), late=seconds, times=times))

    def drop_after(self, route: str, *, times: int | None = 1) -> Fault:
        """Do the work, then close the connection without answering."""
        return self._add(Fault(frozenset({route}), drop=True, times=times))

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _add(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def _take_fault(self, route: str | None) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if route in fault.routes and (fault.times is None or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    # --- reading what happened ------------------------------------------------------------------

    def calls_to(self, route: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.route == route]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                result = predicate()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out waiting for the fake")
                self.changed.wait(min(left, 0.2))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeService

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        matched: tuple[str, re.Match[str], Handler] | None = None
        for method, pattern, name, handler in fake.routes:
            found = pattern.match(parts.path)
            if found and method == self.command:
                matched = (name, found, handler)
                break
        call = Call(
            self.command,
            parts.path,
            parse_qs(parts.query),
            {k.lower(): v for k, v in self.headers.items()},
            body,
            matched[0] if matched else None,
        )
        with fake.changed:
            fake.calls.append(call)
        fault = fake._take_fault(call.route)
        if matched is None:
            answer: Answer = (404, {"message": "Not Found"}, {})
        elif not fake.authorized(call.headers):
            answer = fake.unauthorized()
        elif fault is not None and fault.status is not None:
            answer = (fault.status, fault.body, fault.headers)
        else:
            with fake.lock:
                answer = matched[2](call, matched[1])
        with fake.changed:
            fake.changed.notify_all()
        if fault is not None and fault.drop:
            self.close_connection = True
            return
        if fault is not None and fault.late:
            fake._stopping.wait(fault.late)
        status, payload, headers = answer
        data = b"" if payload is None else json.dumps(payload).encode()
        call.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client gave up waiting
            self.close_connection = True

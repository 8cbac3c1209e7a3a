"""`python -m bot run` end to end, as a subprocess: in both connection modes, and without Slack."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ApiToken, Delivery, DeliveryAction
from tests.fakeslack import FakeSlack, defaults, payloads, post_payload

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def bot_process(cwd: Path = REPO_ROOT, **env: str) -> Iterator[subprocess.Popen[str]]:
    """`python -m bot run` started in `cwd` (its `.env` is read from there)."""
    environ = {
        **os.environ,
        "LOG_LEVEL": "INFO",
        "SLACK_APP_TOKEN": "",
        "PYTHONPATH": str(REPO_ROOT),
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM, as docker stop or systemd would; returns everything the bot logged."""
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=20)
    return output


def get(url: str) -> tuple[int, str]:
    try:
        with NO_PROXY.open(url, timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_until_healthy(process: subprocess.Popen[str], base_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the bot exited early:\n{process.stdout.read()}")
        try:
            if get(f"{base_url}/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the bot never answered /healthz")


def test_http_mode_with_the_embedded_database(embedded_folder: Path):
    """A newcomer's `make run`: no DATABASE_URL, HTTP mode, a slash command answered."""
    port = free_port()
    data_dir = embedded_folder / "data"
    with (
        FakeSlack() as fake,
        bot_process(
            DATABASE_URL="",
            BOT_DATA_DIR=str(data_dir),
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_SIGNING_SECRET=defaults.SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            PORT=str(port),
        ) as process,
    ):
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, base_url)
        assert get(f"{base_url}/healthz") == (200, "ok\n")

        command = payloads.slash_command("/incident", "help", fake=fake)
        status, _, body = post_payload(f"{base_url}/slack/events", command)
        assert status == 200
        assert "/incident list [filters]" in body  # help is answered in the ack
        command = payloads.slash_command("/incident", "list", fake=fake)
        assert post_payload(f"{base_url}/slack/events", command)[0] == 200
        fake.wait_for(lambda: fake.calls_to("response_url"))
        assert fake.calls_to("response_url")[0]["text"] == "0 incidents"

        forged = payloads.slash_command("/incident", "help", fake=fake)
        status, _, _ = post_payload(f"{base_url}/slack/events", forged, secret="not-the-secret")
        assert status == 401

        output = stop(process)
    assert process.returncode == 0, output
    pgdata = (data_dir / "postgres").resolve()
    assert f"Embedded PostgreSQL is running with its data in {pgdata}" in output
    assert f"Starting in HTTP mode on port {port}" in output
    assert not (pgdata / "postmaster.pid").exists(), "the embedded server must stop with the bot"


def test_socket_mode_against_a_loopback_websocket(database_url: str):
    port = free_port()
    with (
        FakeSlack(socket_mode=True) as fake,
        bot_process(
            DATABASE_URL=database_url,
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_APP_TOKEN=defaults.APP_TOKEN,
            SLACK_SIGNING_SECRET="",
            SLACK_API_URL=fake.api_url,
            PORT=str(port),
            # The Socket Mode client ignores NO_PROXY; a proxy here would swallow ws://127.0.0.1.
            HTTPS_PROXY="",
            HTTP_PROXY="",
        ) as process,
    ):
        fake.socket_mode.wait_connected(timeout=30)
        # Slack comes over the WebSocket; PORT still serves the web surface and the health check.
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(process, base_url)
        status, page = get(f"{base_url}/sign-in")
        assert status == 200
        assert "Sign in" in page
        assert get(f"{base_url}/api/v1/incidents")[0] == 401
        assert get(f"{base_url}/slack/events")[0] == 404  # no HTTP endpoint for Slack here
        envelope = fake.socket_mode.send_envelope(
            None, payloads.slash_command("/incident", "list", fake=fake)
        )
        ack = fake.socket_mode.wait_ack(envelope, timeout=10)
        assert ack["envelope_id"] == envelope
        fake.wait_for(lambda: fake.calls_to("response_url"), timeout=10)
        assert fake.calls_to("response_url")[0]["text"] == "0 incidents"
        output = stop(process)
    assert process.returncode == 0, output
    assert (
        f"Starting in Socket Mode against {fake.api_url}; the web surface and /healthz on "
        f"port {port}" in output
    )


class OutputReader:
    """The bot's output, read as it comes (a pipe left unread would stall the bot)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, "".join(self.lines))
            if match:
                return match
            if self.process.poll() is not None and not self._thread.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"never printed {pattern!r}:\n{''.join(self.lines)}")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=20)
        self._thread.join(timeout=5)
        return "".join(self.lines)


class _Stay(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object) -> None:
        return None


def browser() -> urllib.request.OpenerDirector:
    """Keeps cookies, and lets the test see each redirect."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(CookieJar()), _Stay()
    )


def visit(
    opener: urllib.request.OpenerDirector,
    url: str,
    body: dict[str, object] | None = None,
    **headers: str,
) -> tuple[int, dict[str, str], str]:
    data = None
    if body is not None:
        data, headers = json.dumps(body).encode(), {**headers, "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


NO_SLACK = {"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "", "SLACK_SIGNING_SECRET": ""}


def test_without_slack_the_web_surface_runs_alone_and_slack_updates_wait(
    database_url: str, engine: Engine, committing_sessions: sessionmaker[Session]
):
    """A newcomer's first `make run`, before any Slack app exists."""
    port = free_port()
    token_name = f"run-{secrets.token_hex(4)}"
    with bot_process(
        DATABASE_URL=database_url, PORT=str(port), INCIDENT_CHANNEL="C0INCIDENTS", **NO_SLACK
    ) as process:
        output = OutputReader(process)
        link = output.wait_for(rf"http://localhost:{port}/auth/local\?token=[\w-]+").group(0)
        base_url = f"http://127.0.0.1:{port}"
        assert get(f"{base_url}/healthz") == (200, "ok\n")

        person = browser()
        assert visit(person, f"{base_url}/incidents")[0] == 302  # not signed in yet
        status, headers, _ = visit(person, link)
        assert (status, headers["Location"]) == (302, "/incidents")
        status, _, page = visit(person, f"http://localhost:{port}/incidents")
        assert status == 200, page
        assert visit(browser(), link)[0] == 403  # the link works once

        try:
            token = cli(database_url, "token", "create", "--name", token_name).stdout.strip()
            status, _, body = visit(
                browser(),
                f"{base_url}/api/v1/incidents",
                {"title": "Checkout is failing", "severity": "SEV3"},
                Authorization=f"Bearer {token}",
            )
        finally:
            with engine.begin() as connection:
                connection.execute(delete(ApiToken).where(ApiToken.name == token_name))
        assert status == 201, body
        declared = json.loads(body)["id"]
        time.sleep(0.5)  # no worker sends anything, however long it waits
        with committing_sessions() as session:
            waiting = session.scalars(select(Delivery).where(Delivery.incident_id == declared))
            assert [(d.action, d.delivered_at, d.failed_at) for d in waiting] == [
                (DeliveryAction.POST_CARD, None, None)
            ]

        discarded = cli(database_url, "outbox", "discard", "--yes")
        assert "Discarded 1 update(s)" in discarded.stdout
        with committing_sessions() as session:
            row = session.scalars(select(Delivery).where(Delivery.incident_id == declared)).one()
            assert row.failed_at is not None
            assert row.last_error is not None and row.last_error.startswith("discarded by ")

        log = output.stop()
    assert process.returncode == 0, log
    assert f"Slack is off (no SLACK_BOT_TOKEN): the web surface runs alone on port {port}" in log
    assert "`python -m bot outbox discard` drops them" in log
    # Using the link prints no next one: `python -m bot link` gives another on request.
    assert log.count("/auth/local?token=") == 1
    assert "For another one: .venv/bin/python -m bot link" in log
    assert "Starting in" not in log


def test_half_a_slack_setup_refuses_to_start(database_url: str):
    with bot_process(
        DATABASE_URL=database_url,
        PORT=str(free_port()),
        **{**NO_SLACK, "SLACK_BOT_TOKEN": "xoxb-1"},
    ) as process:
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Can't start in HTTP mode: set SLACK_SIGNING_SECRET." in output
    assert "Slack is off" not in output


def other_addresses_of_this_machine() -> list[str]:
    """Addresses of this machine besides 127.0.0.1: another loopback one, and the one its route
    out leaves from, when it has one."""
    found = ["127.0.0.2"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # UDP: sends nothing, only picks the route
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    return found


def answers_at(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


@pytest.mark.parametrize(("host", "everywhere"), [("", False), ("0.0.0.0", True)])
def test_without_slack_the_server_listens_on_loopback_unless_host_says_otherwise(
    database_url: str, host: str, everywhere: bool
):
    port = free_port()
    with bot_process(DATABASE_URL=database_url, PORT=str(port), HOST=host, **NO_SLACK) as process:
        output = OutputReader(process)
        output.wait_for(r"Sign in as the local admin")
        wait_until_healthy(process, f"http://127.0.0.1:{port}")
        elsewhere = other_addresses_of_this_machine()
        assert {a: answers_at(a, port) for a in elsewhere} == dict.fromkeys(elsewhere, everywhere)
        log = output.stop()
    assert f"runs alone on port {port} (HOST {host or '127.0.0.1'})" in log

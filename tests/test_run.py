"""`python -m bot run` end to end, as a subprocess, in both connection modes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.fakeslack import FakeSlack, defaults, payloads, post_payload

REPO_ROOT = Path(__file__).resolve().parent.parent
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def bot_process(**env: str) -> Iterator[subprocess.Popen[str]]:
    environ = {**os.environ, "LOG_LEVEL": "INFO", "SLACK_APP_TOKEN": "", **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=REPO_ROOT,
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


def test_http_mode_with_the_embedded_database(tmp_path: Path):
    """A newcomer's `make run`: no DATABASE_URL, HTTP mode, a slash command answered."""
    port = free_port()
    data_dir = tmp_path / "data"
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
    with (
        FakeSlack(socket_mode=True) as fake,
        bot_process(
            DATABASE_URL=database_url,
            SLACK_BOT_TOKEN=defaults.BOT_TOKEN,
            SLACK_APP_TOKEN=defaults.APP_TOKEN,
            SLACK_SIGNING_SECRET="",
            SLACK_API_URL=fake.api_url,
            # The Socket Mode client ignores NO_PROXY; a proxy here would swallow ws://127.0.0.1.
            HTTPS_PROXY="",
            HTTP_PROXY="",
        ) as process,
    ):
        fake.socket_mode.wait_connected(timeout=30)
        envelope = fake.socket_mode.send_envelope(
            None, payloads.slash_command("/incident", "list", fake=fake)
        )
        ack = fake.socket_mode.wait_ack(envelope, timeout=10)
        assert ack["envelope_id"] == envelope
        fake.wait_for(lambda: fake.calls_to("response_url"), timeout=10)
        assert fake.calls_to("response_url")[0]["text"] == "0 incidents"
        output = stop(process)
    assert process.returncode == 0, output
    assert "Starting in Socket Mode" in output

"""Benchmark: what oversized bodies on /slack/events cost the real bot (memory, log, answer).

    make bench-bodies

Runs `python -m bot run` (HTTP mode, waitress) against the fake Slack and sends unsigned bodies
of 20 MB and 200 MB, once with Content-Length and once chunked. Reports each answer, the bot's
resident memory (VmRSS) and its peak (VmHWM) before and after, and whether any of the body
reached the log.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from bench import bench_database, http_bot
from db import migrate
from db.session import make_engine
from tests.fakeslack import FakeSlack
from tests.test_run import stop

MARKER = b"zq-oversized-marker-zq&"
MIB = 1024 * 1024


def memory_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of `pid` in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def send(port: int, size: int, *, chunked: bool) -> str:
    """POST `size` bytes of unsigned form body; the status line, or how it ended."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {int(time.time())}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
        f"{framing}\r\n\r\n"
    )
    block = MARKER * (MIB // len(MARKER))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        sent = 0
        try:
            while sent < size:
                piece = block[: size - sent]
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body went out
        try:
            answer = sock.recv(200).split(b"\r\n", 1)[0].decode()
        except ConnectionResetError:
            answer = "connection reset by the bot"
    return f"{answer or 'connection closed'} after {sent / MIB:.0f} MiB sent"


def run(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    engine.dispose()
    with FakeSlack() as fake, http_bot(database_url, fake, "DEBUG") as (process, port):
        print(f"{'body':28} {'answer':48} {'RSS MiB':>9} {'peak MiB':>9}")
        rss, peak = memory_mib(process.pid)
        print(f"{'(before)':28} {'':48} {rss:9.0f} {peak:9.0f}")
        for size in (20 * MIB, 200 * MIB):
            for chunked in (False, True):
                answer = send(port, size, chunked=chunked)
                rss, peak = memory_mib(process.pid)
                name = f"{size // MIB} MiB {'chunked' if chunked else 'with Content-Length'}"
                print(f"{name:28} {answer:48} {rss:9.0f} {peak:9.0f}")
        calls = [call.method for call in fake.calls if call.method != "auth.test"]
        log = stop(process)
    print(f"Slack calls made for these requests: {calls or 'none'}")
    print(f"Body text in the bot's DEBUG log: {'YES' if MARKER.decode() in log else 'none'}")


def main() -> None:
    with bench_database() as url:
        run(url)


if __name__ == "__main__":
    main()

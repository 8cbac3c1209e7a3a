"""Processes starting the embedded PostgreSQL at once, on a machine's first run too.

A newcomer's first `make test` (two workers on one server) or a second `make run` beside the
first must find one server, started once. As root the first start also creates the system user
embedded_postgres, shared by every data folder; that is proved in a private copy of /etc
without the user, so the machine's own user (and any server running as it) is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_run import REPO_ROOT

# An overlay over /etc in a mount namespace of its own: writes (useradd's) land in a tmpfs that
# goes away with the namespace. $0 is a scratch folder, the rest the command to run there.
FRESH_ETC = """
mount -t tmpfs tmpfs "$0" && mkdir "$0/upper" "$0/work" &&
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$0/upper,workdir=$0/work" /etc &&
for file in passwd shadow group gshadow; do
  [ ! -e "/etc/$file" ] || sed -i '/^embedded_postgres:/d' "/etc/$file" || exit
done &&
exec "$@"
"""


def race(data_dirs: list[Path], prefix: list[str]) -> dict:
    """Start the embedded server once per folder, all at the same moment; every one must end
    well, and a folder's starts must share its one server, stopped when the last exits."""
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "tests.embedded_race", *map(str, data_dirs)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    servers: dict[Path, set[str]] = {}
    for data_dir, start in zip(data_dirs, outcome["starts"], strict=True):
        assert start["status"] == 0, start["stderr"]
        servers.setdefault(data_dir, set()).add(json.dumps(start["answer"]))
        assert not (data_dir / "postgres" / "postmaster.pid").exists(), "left running"
    assert all(len(answers) == 1 for answers in servers.values()), servers
    return outcome


def test_two_starts_at_once_on_a_fresh_data_folder_share_one_server(embedded_folder: Path):
    race([embedded_folder / "data", embedded_folder / "data"], [])


@pytest.fixture
def fresh_etc(embedded_folder: Path) -> list[str]:
    """The command prefix that runs a command with /etc as it is, minus embedded_postgres."""
    if os.geteuid() != 0:
        pytest.skip("needs root: only a start as root creates a system user")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) for a private /etc")
    scratch = embedded_folder / "etc"
    scratch.mkdir()
    prefix = ["unshare", "--mount", "--propagation", "private", "sh", "-c", FRESH_ETC, scratch]
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private /etc here (a mount namespace and an overlay): {probe.stderr}")
    return prefix


def test_the_first_starts_as_root_create_the_system_user_once(
    embedded_folder: Path, fresh_etc: list[str]
):
    """Two on one data folder (a first `make test`), a third on another (a `make run` beside)."""
    first, second = embedded_folder / "data", embedded_folder / "other"
    outcome = race([first, first, second], fresh_etc)
    assert outcome["users_before"] == []
    assert len(outcome["users"]) == 1, outcome["users"]
    owners = {start["pgdata_uid"] for start in outcome["starts"]}
    assert owners == {outcome["user_uid"]}, "every data folder belongs to the one user"

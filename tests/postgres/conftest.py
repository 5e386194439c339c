"""A real PostgreSQL server for this suite: a throwaway cluster in a temp dir on 127.0.0.1.

The server refuses to run as root, so when the tests run as root (CI) ``initdb`` and ``pg_ctl`` run
as the ``postgres`` user, in a folder that user owns. Missing server binaries are an error that says
how to install them, never a skip: a suite that quietly tested nothing would count as a pass.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError("tests/postgres need the PostgreSQL server binaries (initdb, pg_ctl), found neither in "
                       "/usr/lib/postgresql/*/bin nor on PATH: apt-get install postgresql (.ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, and there is no 'postgres' user to run the server as "
                           "(the server refuses root); apt-get install postgresql creates it") from None
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    bindir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="agentkit-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres") if _as_server_user(["x"])[0] == "runuser" else None
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run(_as_server_user([str(bindir / cmd[0]), *cmd[1:]]), capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}{log[-2000:]}")

    run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "server.log"), "-w", "-t", "60", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)

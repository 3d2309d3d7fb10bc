"""A throwaway PostgreSQL server for the distributed-tuning test, or a skip saying why not.

The server is the machine's own PostgreSQL (``initdb`` and ``pg_ctl`` on the ``PATH``; nothing is
downloaded): a new cluster in a temporary folder, listening on 127.0.0.1 at a free port with
trust authentication, stopped and deleted after the test.  As root it runs as the ``postgres``
system user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user() -> tuple[list[str], int | None]:
    """The command prefix and uid that run PostgreSQL's programs (``runuser`` when root)."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' system user to run PostgreSQL")
    if shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing: cannot start PostgreSQL as 'postgres'")
    return ["runuser", "-u", "postgres", "--"], uid


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """``postgresql+psycopg2://postgres@127.0.0.1:<port>/optuna`` of a fresh local server."""
    missing = [p for p in ("initdb", "pg_ctl") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"PostgreSQL is not installed here ({', '.join(missing)} not on the PATH)")
    psycopg2 = pytest.importorskip("psycopg2", reason="the postgres extra (psycopg2) is missing")
    prefix, uid = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="tierlab-pg-"))
    if uid is not None:
        os.chown(root, uid, -1)
    data, port = root / "data", _free_port()

    def run(*args: str) -> None:
        out = subprocess.run([*prefix, *args], capture_output=True, text=True, cwd=root)
        if out.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {out.stdout[-1500:]}{out.stderr[-1500:]}")

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
        deadline = time.monotonic() + 30
        while True:
            try:
                con = psycopg2.connect(host="127.0.0.1", port=port, user="postgres")
                break
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        con.autocommit = True
        con.cursor().execute("CREATE DATABASE optuna")
        con.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/optuna"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*prefix, "pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                cwd=root,
            )
        shutil.rmtree(root, ignore_errors=True)

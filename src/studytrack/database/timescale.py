"""TimescaleDB set-up: extension, hypertable, and settings read back to prove they took effect."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from studytrack.config import Settings
from studytrack.database import catalog

log = logging.getLogger(__name__)


class TimescaleDBError(RuntimeError):
    """TimescaleDB was required or configured but did not take the setting."""


def enable_timescaledb(bind: Connection, settings: Settings) -> str | None:
    """Create the extension when the server can run it and `TIMESCALEDB` allows; its version, or None for
    plain mode. Run before the baseline migration, which then makes `events` a hypertable."""
    if settings.timescaledb == "off":
        log.info("TIMESCALEDB=off: plain PostgreSQL mode")
        return None
    available = bind.execute(text(catalog.EXTENSION_AVAILABLE)).scalar()
    if available is None:
        if settings.timescaledb == "required":
            raise TimescaleDBError(
                "TIMESCALEDB=required but this server has no timescaledb extension"
                " (embedded PostgreSQL: run `studytrack timescaledb install`)"
            )
        log.info("timescaledb extension not available: plain PostgreSQL mode")
        return None
    # Checked first: without the preload, CREATE EXTENSION fails with FATAL and ends the migration's session.
    preloaded = bind.execute(text(catalog.PRELOADED_LIBRARIES)).scalar()
    if "timescaledb" not in str(preloaded):
        reason = "the timescaledb extension is installed but not in shared_preload_libraries"
        if settings.timescaledb == "required":
            raise TimescaleDBError(f"TIMESCALEDB=required but {reason} (add it and restart the server)")
        log.warning("%s (add it and restart the server to use it): plain PostgreSQL mode", reason)
        return None
    try:
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
    except DBAPIError as exc:
        if settings.timescaledb == "required":
            raise TimescaleDBError(f"cannot create the timescaledb extension: {exc.orig}") from None
        log.warning("timescaledb extension cannot be created (%s): plain PostgreSQL mode", exc.orig)
        return None
    return str(bind.execute(text(catalog.EXTENSION_VERSION)).scalar())


def is_hypertable(bind: Connection) -> bool:
    return bool(bind.execute(text(catalog.HAS_TIMESCALEDB_CATALOG)).scalar()) and bool(
        bind.execute(text(catalog.EVENTS_IS_HYPERTABLE)).scalar()
    )


def chunk_time_interval(bind: Connection) -> timedelta:
    value = bind.execute(text(catalog.CHUNK_TIME_INTERVAL)).scalar()
    if not isinstance(value, timedelta):
        raise TimescaleDBError("events is not partitioned by time")
    return value


def timescaledb_version(bind: Connection) -> tuple[int, int]:
    text_version = str(bind.execute(text(catalog.EXTENSION_VERSION)).scalar())
    major, minor = text_version.split(".")[:2]
    return int(major), int(minor)


def _has_columnstore_api(bind: Connection) -> bool:
    return timescaledb_version(bind) >= (2, 18)  # add_columnstore_policy and friends arrived in 2.18


def _policy(bind: Connection, proc: str, table: str) -> tuple[int, dict[str, object]] | None:
    row = bind.execute(text(catalog.POLICY_JOB), {"proc": proc, "table": table}).first()
    return (int(row[0]), dict(row[1])) if row else None


def _interval(bind: Connection, value: object) -> timedelta | None:
    if value is None:
        return None
    return bind.execute(text("SELECT CAST(:v AS interval)"), {"v": str(value)}).scalar_one()  # type: ignore[no-any-return]


def _apply_compression_policy(bind: Connection, after: timedelta | None) -> None:
    job = _policy(bind, "policy_compression", "events")
    if job is not None and _interval(bind, job[1].get("compress_after")) == after:
        return
    columnstore = _has_columnstore_api(bind)
    if job is not None:
        remove = (
            "CALL remove_columnstore_policy('events')" if columnstore else "SELECT remove_compression_policy('events')"
        )
        bind.execute(text(remove))
    if after is not None:
        add = (
            "CALL add_columnstore_policy('events', after => CAST(:after AS interval))"
            if columnstore
            else "SELECT add_compression_policy('events', compress_after => CAST(:after AS interval))"
        )
        bind.execute(text(add), {"after": after})


def _apply_retention_policy(bind: Connection, drop_after: timedelta | None) -> None:
    job = _policy(bind, "policy_retention", "events")
    if job is not None and _interval(bind, job[1].get("drop_after")) == drop_after:
        return
    if job is not None:
        bind.execute(text("SELECT remove_retention_policy('events')"))
    if drop_after is not None:
        bind.execute(
            text("SELECT add_retention_policy('events', drop_after => CAST(:after AS interval))"),
            {"after": drop_after},
        )


def apply_timescaledb_settings(bind: Connection, settings: Settings) -> None:
    """Bring the hypertable and its policies in line with the settings, then read them back (never trust a
    silent SET)."""
    if not is_hypertable(bind):
        return
    if chunk_time_interval(bind) != settings.chunk_time_interval:
        bind.execute(
            text("SELECT set_chunk_time_interval('events', CAST(:interval AS interval))"),
            {"interval": settings.chunk_time_interval},
        )
    _apply_compression_policy(bind, settings.compress_after)
    _apply_retention_policy(bind, settings.retention)

    actual = chunk_time_interval(bind)
    if actual != settings.chunk_time_interval:
        raise TimescaleDBError(f"chunk interval is {actual}, expected {settings.chunk_time_interval}")
    compression = _policy(bind, "policy_compression", "events")
    if _interval(bind, compression[1].get("compress_after") if compression else None) != settings.compress_after:
        raise TimescaleDBError("the compression policy did not take the COMPRESS_AFTER_DAYS setting")
    retention = _policy(bind, "policy_retention", "events")
    if _interval(bind, retention[1].get("drop_after") if retention else None) != settings.retention:
        raise TimescaleDBError("the retention policy did not take the RETENTION_DAYS setting")
    log.info(
        "hypertable events: chunk interval %s, compress after %s, retention %s",
        actual,
        settings.compress_after or "off",
        settings.retention or "off",
    )

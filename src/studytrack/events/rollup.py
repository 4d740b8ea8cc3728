"""When the bucket query may read the 15-minute continuous aggregate, and keeping it exact after late writes.

`events_15m` answers like the raw table when every bucket edge falls on a 15-minute UTC boundary: the
width is a multiple of 15 minutes (or months/years) and the zone's offsets are multiples of 15 minutes
(true of every zone since 1980). Real-time aggregation covers writes newer than its watermark; a write
older than that (a late or imported session) is folded in by refreshing its window right after commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from studytrack.database.timescale import ROLLUP_END_OFFSET  # the refresh policy's end_offset
from studytrack.events.durations import Duration

log = logging.getLogger(__name__)

GRAIN = timedelta(minutes=15)
MERGE_GAP = timedelta(hours=6)
ALIGNED_SINCE = datetime(1980, 1, 1, tzinfo=UTC)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # time_bucket's origin
# force: recompute the window even where no invalidation was logged (the write may have raced the
# invalidation threshold); available since TimescaleDB 2.19, older versions take the plain call.
REFRESH = "CALL refresh_continuous_aggregate('events_15m', %s::timestamptz, %s::timestamptz, force => true)"
REFRESH_UNFORCED = "CALL refresh_continuous_aggregate('events_15m', %s::timestamptz, %s::timestamptz)"
REFRESH_LOCK_ID = 0x57D7_7AC5  # pg_advisory_lock key shared by every process that refreshes after a write
REFRESH_ATTEMPTS = 6


def floor_grain(moment: datetime) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // GRAIN) * GRAIN


def ceil_grain(moment: datetime) -> datetime:
    floor = floor_grain(moment)
    return floor if floor == moment else floor + GRAIN


def can_use_rollup(width: Duration, start: datetime) -> bool:
    fixed = width.fixed
    return start >= ALIGNED_SINCE and (fixed is None or fixed % GRAIN == timedelta(0))


def refresh_windows(
    times: Sequence[datetime], *, now: datetime, retention: timedelta | None
) -> list[tuple[datetime, datetime]]:
    """The 15-minute-aligned windows that hold `times`, below the watermark's ceiling, nearby ones merged
    (one refresh call per cluster, never a year-long recomputation for two far-apart sessions)."""
    ceiling = floor_grain(now - ROLLUP_END_OFFSET)  # the policy's watermark never passes this: newer rows are real-time
    floor = ceil_grain(now - retention) if retention is not None else None
    windows: list[tuple[datetime, datetime]] = []
    for start in sorted({floor_grain(t) for t in times}):
        lower, upper = start if floor is None else max(start, floor), min(start + GRAIN, ceiling)
        if lower >= upper:
            continue
        if windows and lower - windows[-1][1] <= MERGE_GAP:
            windows[-1] = (windows[-1][0], upper)
        else:
            windows.append((lower, upper))
    return windows


async def refresh_after_write(
    pool: AsyncConnectionPool[Any], times: Sequence[datetime], *, retention: timedelta | None
) -> None:
    """Fold committed writes older than the watermark into the aggregate, so the next read is exact.

    TimescaleDB refuses a refresh whose window overlaps one in progress (LockNotAvailable) instead of
    waiting, so writers take turns on an advisory lock and retry a clash with the policy job."""
    windows = refresh_windows(times, now=datetime.now(UTC), retention=retention)
    if not windows:
        return
    try:
        async with pool.connection() as conn:  # autocommit: a refresh cannot run inside a transaction block
            await refresh(conn, windows)
    except Exception as exc:  # the write is committed; the refresh policy catches up within minutes
        log.warning("could not refresh events_15m (%d windows): %s", len(windows), exc)


async def refresh(conn: Any, windows: Sequence[tuple[datetime | None, datetime]], *, force: bool = True) -> None:
    """Refresh these windows of the aggregate (None: from the start), one refresher at a time; without
    `force`, only where invalidations were logged."""
    await conn.execute("SELECT pg_advisory_lock(%s)", (REFRESH_LOCK_ID,))
    try:
        for lower, upper in windows:
            await _refresh(conn, lower, upper, force=force)
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (REFRESH_LOCK_ID,))


async def _refresh(conn: Any, lower: datetime | None, upper: datetime, *, force: bool) -> None:
    for attempt in range(REFRESH_ATTEMPTS):
        try:
            try:
                await conn.execute(REFRESH if force else REFRESH_UNFORCED, (lower, upper), prepare=False)
            except (errors.UndefinedFunction, errors.UndefinedParameter):
                await conn.execute(REFRESH_UNFORCED, (lower, upper), prepare=False)
            return
        except errors.LockNotAvailable:  # the refresh policy is on an overlapping window right now
            if attempt == REFRESH_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.05 * 2**attempt)

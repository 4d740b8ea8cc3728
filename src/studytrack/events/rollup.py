"""When the bucket query may read the 15-minute rollup `events_15m` instead of the raw rows.

`events_15m` (one row per tag and 15-minute UTC bucket, kept exact by every insert and delete in the same
statement) answers like the raw table when every bucket edge falls on a 15-minute UTC boundary: the width
is a multiple of 15 minutes (or months/years) and the zone's offsets are multiples of 15 minutes (true of
every zone since 1980).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studytrack.events.durations import BUCKET_ORIGIN, Duration

GRAIN = timedelta(minutes=15)
ALIGNED_SINCE = datetime(1980, 1, 1, tzinfo=UTC)
_EPOCH = BUCKET_ORIGIN.replace(tzinfo=UTC)  # the rollup's 15-minute buckets are cut in UTC


def floor_grain(moment: datetime) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // GRAIN) * GRAIN


def ceil_grain(moment: datetime) -> datetime:
    floor = floor_grain(moment)
    return floor if floor == moment else floor + GRAIN


def can_use_rollup(width: Duration, start: datetime) -> bool:
    fixed = width.fixed
    return start >= ALIGNED_SINCE and (fixed is None or fixed % GRAIN == timedelta(0))

"""The rollups `events_15m` and `events_1h`: when a chart may read one instead of the raw rows.

Each holds one row per tag and UTC bucket of its grain (15 minutes, an hour), kept exact by every insert and
delete in the same statement. A rollup answers like the raw rows over a stretch of time when no slot edge
falls inside one of its buckets there: every edge is on its grain (`BucketBounds.on_grid`). Whole-hour zones
and widths of an hour or more fit the hourly one; 15-minute widths or offsets such as +05:30 the other.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studytrack.events.durations import BUCKET_ORIGIN

QUARTER_HOUR = timedelta(minutes=15)
HOUR = timedelta(hours=1)
_EPOCH = BUCKET_ORIGIN.replace(tzinfo=UTC)  # the rollups' buckets are cut in UTC


def floor_to(moment: datetime, grain: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // grain) * grain


def ceil_to(moment: datetime, grain: timedelta) -> datetime:
    floor = floor_to(moment, grain)
    return floor if floor == moment else floor + grain

"""The rollups `events_15m`, `events_1h` and `events_1d`: when a chart may read one instead of the raw rows.

Each holds one row per tag and UTC bucket of its grain (15 minutes, an hour, a day), kept exact by every insert
and delete in the same statement. A rollup answers like the raw rows over a stretch of time when no slot edge
falls inside one of its buckets there: every edge is on its grain (`BucketBounds.on_grid`). Whole-hour zones
and widths of an hour or more fit the hourly one; 15-minute widths or offsets such as +05:30 the other. Days
rarely begin at UTC midnight, so the daily one is read with hourly corrections (`moved_hours`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from studytrack.events.durations import BUCKET_ORIGIN

QUARTER_HOUR = timedelta(minutes=15)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
_EPOCH = BUCKET_ORIGIN.replace(tzinfo=UTC)  # the rollups' buckets are cut in UTC


def floor_to(moment: datetime, grain: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // grain) * grain


def ceil_to(moment: datetime, grain: timedelta) -> datetime:
    floor = floor_to(moment, grain)
    return floor if floor == moment else floor + grain


def nearest_midnights(starts: Sequence[datetime]) -> list[datetime]:
    """Each slot start moved to the nearest UTC midnight: where the daily rollup's rows change slot."""
    return [floor_to(start + DAY / 2, DAY) for start in starts]


def moved_hours(
    starts: Sequence[datetime], midnights: Sequence[datetime], first_day: datetime, end_day: datetime
) -> list[datetime]:
    """The hours in [first_day, end_day) that may lie in another slot than their UTC day: those between a start
    and its midnight (every start there on the hour), each once. An hour listed that lies in its day's slot is
    added and taken back from that slot: harmless."""
    hours: set[datetime] = set()
    for start, midnight in zip(starts, midnights, strict=True):
        hour, last = max(min(start, midnight), first_day), min(max(start, midnight), end_day)
        while hour < last:
            hours.add(hour)
            hour += HOUR
    return sorted(hours)

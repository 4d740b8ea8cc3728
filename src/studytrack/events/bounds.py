"""Bucket boundaries computed once per request: the caller's local bucket starts, as instants.

Bucketing each row in SQL converts it to local time and back (two time zone lookups per row, 35,040
rollup rows per tag and year). Here the local bucket starts are converted once, in Python, and the
query maps each row to its bucket with `width_bucket(time, bounds)`, a binary search over instants.

The answer is exactly `time_bucket(width, time, tz)`'s (PostgreSQL's reading of local times: in a DST
gap the offset before it, when ambiguous the later instant) as long as no bucket starts strictly inside
a DST gap or a repeated (fall-back) interval. When one does (sub-hour widths across a DST change),
`bucket_bounds` returns None and the query buckets row by row in SQL instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from studytrack.events.durations import BUCKET_ORIGIN, Duration
from studytrack.events.rollup import floor_grain

FIXED_ORIGIN = BUCKET_ORIGIN
MONTH_ORIGIN_YEAR = 2000
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class BucketBounds:
    starts: tuple[datetime, ...]  # ascending instants (UTC): a row is in the last bucket starting at or before it
    labels: tuple[datetime, ...]  # the bucket each start opens, as PostgreSQL reads its local start (UTC)
    # The same labels in the caller's zone, as the answer shows them. Not for comparing: an aware datetime
    # in a repeated local hour compares unequal to every instant of another zone (PEP 495).
    shown: tuple[datetime, ...]
    off_grain: tuple[datetime, ...]  # the starts that are not on the 15-minute UTC grid (usually none)

    def on_grain(self, lower: datetime, upper: datetime) -> bool:
        """True when every start inside (lower, upper) is on the 15-minute UTC grid: then no rollup row
        of that range straddles two buckets, and the rollup answers like the raw rows."""
        return not any(lower < start < upper for start in self.off_grain)


def local_time(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.astimezone(zone).replace(tzinfo=None)


def local_bucket(local: datetime, width: Duration) -> datetime:
    """The local start of the bucket holding `local` (naive wall-clock time)."""
    fixed = width.fixed
    if fixed is not None:
        return FIXED_ORIGIN + ((local - FIXED_ORIGIN) // fixed) * fixed
    assert width.months is not None
    index = (local.year - MONTH_ORIGIN_YEAR) * 12 + local.month - 1
    return _month(index // width.months * width.months)


def _month(index: int) -> datetime:
    return datetime(MONTH_ORIGIN_YEAR + index // 12, index % 12 + 1, 1)


def local_starts(width: Duration, first: datetime, last: datetime) -> Iterator[datetime]:
    """Local bucket starts from `first` (itself a start) up to and including `last`."""
    fixed = width.fixed
    if fixed is not None:
        while first <= last:
            yield first
            first += fixed
        return
    assert width.months is not None
    index = (first.year - MONTH_ORIGIN_YEAR) * 12 + first.month - 1
    while (start := _month(index)) <= last:
        yield start
        index += width.months


def _irregular(local: datetime, zone: ZoneInfo) -> str | None:
    """'gap' when this wall-clock time never happens, 'repeat' when it happens twice, else None."""
    early, late = local.replace(tzinfo=zone), local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return None
    return "repeat" if local_time(early.astimezone(UTC), zone) == local else "gap"


def bucket_bounds(width: Duration, tz: str, start: datetime, end: datetime) -> BucketBounds | None:
    """The buckets that [start, end) touches, or None when they cannot be told apart by instants alone."""
    zone = ZoneInfo(tz)
    first = local_bucket(local_time(start, zone), width)
    last = local_bucket(local_time(end, zone) - _TICK, width)
    return _bounds_between(width, tz, first, last)


# A chart asks for the same buckets again and again (a dashboard refreshing, `end` = now): the bounds
# depend only on the first and last local bucket start, so they are kept for the next request.
@lru_cache(maxsize=128)
def _bounds_between(width: Duration, tz: str, first: datetime, last: datetime) -> BucketBounds | None:
    zone = ZoneInfo(tz)
    starts: list[datetime] = []
    labels: list[datetime] = []
    for local in local_starts(width, first, last):
        early = local.replace(tzinfo=zone).astimezone(UTC)
        label = early
        kind = _irregular(local, zone)
        if kind is not None:
            if _irregular(local - _TICK, zone) == kind:
                return None  # starts strictly inside a gap or a repeat: instants cannot separate its rows
            # At a gap's start the offset before the gap gives the transition instant; a repeat's bucket
            # opens at its first occurrence, but PostgreSQL labels it with the second (standard time).
            if kind == "repeat":
                label = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if starts and starts[-1] == early:
            # The bucket before opened at a gap and holds no wall-clock time: this one replaces it.
            starts.pop()
            labels.pop()
        starts.append(early)
        labels.append(label)
    shown = tuple(label.astimezone(zone) for label in labels)
    off_grain = tuple(start for start in starts if floor_grain(start) != start)
    return BucketBounds(tuple(starts), tuple(labels), shown, off_grain)

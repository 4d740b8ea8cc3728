"""Bucket boundaries computed once per request: where the caller's local buckets begin, as instants.

Bucketing each row in SQL converts it to local time and back (two time zone lookups per row, 35,040
rollup rows per tag and year). Here the instants at which the local bucket changes are computed once, in
Python, and the query maps each row to its slot with `width_bucket(time, starts)`, a binary search.

The answer is exactly local-time bucketing's, `date_bin` on `time AT TIME ZONE tz` read back in `tz`
(PostgreSQL's reading of local times: in a DST gap the offset before it, when ambiguous the later
instant). A slot is a stretch of time inside one bucket. Usually slot n is bucket n; in a repeated
(fall-back) interval local time runs twice, so a bucket starting inside it is two slots, and the caller
adds their rows up (`bucket_of_slot`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from studytrack.events.durations import BUCKET_ORIGIN, Duration
from studytrack.events.rollup import HOUR, QUARTER_HOUR, floor_to

FIXED_ORIGIN = BUCKET_ORIGIN
MONTH_ORIGIN_YEAR = 2000
# Local time never jumps back or ahead by more than a day (1900 onwards), so the buckets that a range
# touches lie within a day's local time of its ends.
MAX_JUMP = timedelta(days=1)
_TICK = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class BucketBounds:
    starts: tuple[datetime, ...]  # ascending instants (UTC): slot n (1-based) opens at starts[n - 1]
    bucket_of_slot: tuple[int, ...]  # the index in `labels` of the bucket each slot belongs to
    labels: tuple[datetime, ...]  # the buckets, ascending, as PostgreSQL reads their local starts (UTC)
    # The same labels in the caller's zone, as the answer shows them. Not for comparing: an aware datetime
    # in a repeated local hour compares unequal to every instant of another zone (PEP 495).
    shown: tuple[datetime, ...]
    off_quarter_hours: tuple[datetime, ...]  # the starts that are not on the 15-minute UTC grid (usually none)
    off_hours: tuple[datetime, ...]  # the starts that are not on whole UTC hours

    @property
    def slot_is_bucket(self) -> bool:
        """True unless a bucket is split into two slots by a repeated local interval."""
        return len(self.starts) == len(self.labels)

    def on_grid(self, lower: datetime, upper: datetime, grain: timedelta) -> bool:
        """True when every start inside (lower, upper) is on the UTC grid of `grain` (15 minutes or an hour):
        then no rollup row of that range straddles two slots, and the rollup answers like the raw rows."""
        off = self.off_hours if grain == HOUR else self.off_quarter_hours
        assert grain in (HOUR, QUARTER_HOUR)
        return not any(lower < start < upper for start in off)


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


def postgres_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """`local AT TIME ZONE zone`: in a gap the offset before it, when ambiguous the later instant."""
    early, late = local.replace(tzinfo=zone), local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset() or local_time(early.astimezone(UTC), zone) != local:
        return early.astimezone(UTC)
    return late.astimezone(UTC)


def _offset_change(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (before, after] with another UTC offset than `before` (changes fall on seconds)."""
    offset = before.astimezone(zone).utcoffset()
    while after - before > _SECOND:
        middle = before + (after - before) // 2
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return before.replace(microsecond=0) + _SECOND  # the one whole second in (before, after]


def bucket_bounds(width: Duration, tz: str, start: datetime, end: datetime) -> BucketBounds:
    """The slots and buckets that [start, end) touches."""
    zone = ZoneInfo(tz)
    first = local_bucket(local_time(start, zone) - MAX_JUMP, width)
    last = local_bucket(local_time(end - _TICK, zone) + MAX_JUMP, width)
    instants, _ = _edges(width, tz, first, last)
    return _bounds(width, tz, first, last, bisect_right(instants, start) - 1, bisect_left(instants, end))


# A chart asks for the same buckets again and again (a dashboard refreshing, `end` = now): the edges
# depend only on the first and last local bucket start, so they are kept for the next request.
@lru_cache(maxsize=128)
def _edges(
    width: Duration, tz: str, first: datetime, last: datetime
) -> tuple[tuple[datetime, ...], tuple[datetime, ...]]:
    """Every instant at which the local bucket changes, from `first`'s bucket to `last`'s, with the bucket
    (its label) that begins there."""
    zone = ZoneInfo(tz)
    edges: dict[datetime, datetime] = {}
    for local in local_starts(width, first, last):
        early = local.replace(tzinfo=zone).astimezone(UTC)
        late = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if early == late:  # the wall clock shows `local` once: the bucket begins then
            edges[early] = early
            continue
        if local_time(early, zone) == local:  # shown twice (a repeat): both times open the bucket
            edges[early] = edges[late] = late
        # In a gap or a repeat local time jumps, perhaps over this start: the bucket changes at the jump.
        change = _offset_change(min(early, late), max(early, late), zone)
        edges.setdefault(change, postgres_instant(local_bucket(local_time(change, zone), width), zone))
    instants: list[datetime] = []
    labels: list[datetime] = []
    for instant in sorted(edges):
        if not labels or labels[-1] != edges[instant]:  # an offset change inside a bucket opens nothing
            instants.append(instant)
            labels.append(edges[instant])
    return tuple(instants), tuple(labels)


@lru_cache(maxsize=128)
def _bounds(width: Duration, tz: str, first: datetime, last: datetime, lo: int, hi: int) -> BucketBounds:
    instants, edge_labels = _edges(width, tz, first, last)
    starts, slot_labels = instants[lo:hi], edge_labels[lo:hi]
    labels = tuple(sorted(set(slot_labels)))
    index = {label: n for n, label in enumerate(labels)}
    zone = ZoneInfo(tz)
    return BucketBounds(
        starts=starts,
        bucket_of_slot=tuple(index[label] for label in slot_labels),
        labels=labels,
        shown=tuple(label.astimezone(zone) for label in labels),
        off_quarter_hours=tuple(start for start in starts if floor_to(start, QUARTER_HOUR) != start),
        off_hours=tuple(start for start in starts if floor_to(start, HOUR) != start),
    )

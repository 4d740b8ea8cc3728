"""The rollups `events_15m`, `events_1h` and `events_1d`: when a chart may read one instead of the raw rows.

Each holds one row per tag and UTC bucket of its grain (15 minutes, an hour, a day), kept exact by every insert
and delete in the same statement. A rollup answers like the raw rows over a stretch of time when no slot edge
falls inside one of its buckets there: every edge is on its grain (`BucketBounds.on_grid`). Whole-hour zones
and widths of an hour or more fit the hourly one; 15-minute widths or offsets such as +05:30 the other. Days
rarely begin at UTC midnight, so the daily one is read with hourly and quarter-hourly corrections
(`moved_hours_and_quarters`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache

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


# A moved hour or quarter hour costs about as much as 3.5 rollup rows read in order (bench/README.md, "Daily
# rollup"): the daily rollup is read while that beats reading the range's hours (or quarter hours).
MOVED_ROW_COST = 3.5
# Plans of charts up to this many slots (a few years of days) are kept: a dashboard asks for the same again.
CACHED_SLOTS = 1_000
Plan = tuple[tuple[datetime, ...], tuple[datetime, ...], tuple[datetime, ...]]


def daily_plan(starts: tuple[datetime, ...], first_day: datetime, end_day: datetime, rows_per_day: int) -> Plan | None:
    """(midnights, moved hours, moved quarter hours) for reading the whole days from `first_day` to `end_day`
    from the daily rollup, when that reads less than `rows_per_day` rows a day of another rollup would
    (24 hourly, 96 quarter-hourly), else None."""
    plan = _cached_plan if len(starts) <= CACHED_SLOTS else _plan
    return plan(starts, first_day, end_day, rows_per_day)


def _plan(starts: tuple[datetime, ...], first_day: datetime, end_day: datetime, rows_per_day: int) -> Plan | None:
    midnights = nearest_midnights(starts)
    days = (end_day - first_day) / DAY
    budget = days * rows_per_day
    # Cheap first: every moved row an hour (the fewest rows the distances allow); listing them costs more.
    if days + MOVED_ROW_COST * _quarter_hours_away(starts, midnights) / 4 >= budget:
        return None
    hours, quarters = moved_hours_and_quarters(starts, midnights, first_day, end_day)
    if days + MOVED_ROW_COST * (len(hours) + len(quarters)) >= budget:
        return None
    return tuple(midnights), tuple(hours), tuple(quarters)


_cached_plan = lru_cache(maxsize=32)(_plan)


def _quarter_hours_away(starts: Sequence[datetime], midnights: Sequence[datetime]) -> int:
    return sum(abs(midnight - start) // QUARTER_HOUR for start, midnight in zip(starts, midnights, strict=True))


def moved_hours_and_quarters(
    starts: Sequence[datetime], midnights: Sequence[datetime], first_day: datetime, end_day: datetime
) -> tuple[list[datetime], list[datetime]]:
    """The whole hours, and the quarter hours outside them, in [first_day, end_day) that may lie in another
    slot than their UTC day: those between a start (on the quarter hour there) and its midnight, each once.
    An hour with a start inside is listed as its quarter hours: a moved row must lie in one slot. One listed
    that lies in its day's slot is added to that slot and taken back: harmless."""
    stretches = sorted(
        (max(min(start, midnight), first_day), min(max(start, midnight), end_day))
        for start, midnight in zip(starts, midnights, strict=True)
    )
    split = {floor_to(start, HOUR) for start in starts if floor_to(start, HOUR) != start}
    hours: list[datetime] = []
    quarters: list[datetime] = []
    for lower, upper in _merged(stretches):
        whole_from, whole_to = ceil_to(lower, HOUR), floor_to(upper, HOUR)
        if whole_from >= whole_to:  # no whole hour inside
            whole_from = whole_to = upper
        quarters.extend(_steps(lower, whole_from, QUARTER_HOUR))
        for hour in _steps(whole_from, whole_to, HOUR):
            if hour in split:
                quarters.extend(_steps(hour, hour + HOUR, QUARTER_HOUR))
            else:
                hours.append(hour)
        quarters.extend(_steps(whole_to, upper, QUARTER_HOUR))
    return hours, sorted(quarters)


def _merged(stretches: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sorted stretches of time, overlapping ones joined (a repeated midnight can make two overlap)."""
    merged: list[tuple[datetime, datetime]] = []
    for lower, upper in stretches:
        if lower >= upper:
            continue
        if merged and lower <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], upper))
        else:
            merged.append((lower, upper))
    return merged


def _steps(lower: datetime, upper: datetime, grain: timedelta) -> list[datetime]:
    return [lower + n * grain for n in range((upper - lower) // grain)]

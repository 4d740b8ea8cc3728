"""The rollups `events_15m`, `events_1h`, `events_6h` and `events_1d`: when a chart may read one instead of the
raw rows.

Each holds one row per tag and UTC bucket of its grain (15 minutes, an hour, six hours, a day), kept exact by
every insert and delete in the same statement. A rollup answers like the raw rows over a stretch of time when no
slot edge falls inside one of its buckets there: every edge is on its grain (`BucketBounds.on_grid`).
Whole-hour zones and widths of an hour or more fit the hourly one; 15-minute widths or offsets such as +05:30
the 15-minute one. Days rarely begin at UTC midnight or on a six-hour mark, so the two coarse ones are read
with hourly and quarter-hourly corrections (`coarse_plan`): the daily one near UTC, the six-hourly one where a
day begins hours away from UTC midnight (US Pacific, Tokyo, India).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from studytrack.events.durations import BUCKET_ORIGIN

QUARTER_HOUR = timedelta(minutes=15)
HOUR = timedelta(hours=1)
SIX_HOURS = timedelta(hours=6)
DAY = timedelta(days=1)
COARSE_GRAINS = (DAY, SIX_HOURS)  # the rollups a chart of days may read with moved hours: events_1d, events_6h
_EPOCH = BUCKET_ORIGIN.replace(tzinfo=UTC)  # the rollups' buckets are cut in UTC


def floor_to(moment: datetime, grain: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // grain) * grain


def ceil_to(moment: datetime, grain: timedelta) -> datetime:
    floor = floor_to(moment, grain)
    return floor if floor == moment else floor + grain


def nearest_on_grain(starts: Sequence[datetime], grain: timedelta) -> list[datetime]:
    """Each slot start moved to the nearest multiple of `grain` (a UTC midnight for days): where a coarse rollup's
    rows change slot."""
    return [floor_to(start + grain / 2, grain) for start in starts]


# A moved hour or quarter hour costs about as much as 3.5 rollup rows read in order (bench/README.md, "Daily
# rollup"): a coarse rollup is read while that beats reading the range's hours (or quarter hours).
MOVED_ROW_COST = 3.5
# Plans of charts up to this many slots (a few years of days) are kept: a dashboard asks for the same again.
CACHED_SLOTS = 1_000


@dataclass(frozen=True)
class CoarsePlan:
    """A chart of days read from a coarse rollup (`grain`: daily or six-hourly): its whole rows from `start` to
    `end`, each summed into its slot by `moved_starts` (each slot start moved to the grain), then the `hours` and
    `quarters` between a start and its moved start added to the slot they are in and taken from the other."""

    grain: timedelta
    start: datetime
    end: datetime
    moved_starts: tuple[datetime, ...]
    hours: tuple[datetime, ...]
    quarters: tuple[datetime, ...]


def coarse_plan(
    starts: tuple[datetime, ...],
    inner_start: datetime,
    inner_end: datetime,
    fine: timedelta | None,
    grains: tuple[timedelta, ...] = COARSE_GRAINS,
) -> CoarsePlan | None:
    """The coarse rollup of `grains` that reads the fewest rows for a chart with these slot starts over the
    quarter hours `inner_start`..`inner_end`, when that is fewer than the `fine` rollup (hourly or 15-minute)
    would read (None: whatever it would); else None. The range's quarter hours outside the coarse rows count as
    rows of `events_15m`."""
    plan = _cached_plan if len(starts) <= CACHED_SLOTS else _plan
    return plan(starts, inner_start, inner_end, fine, grains)


def _plan(
    starts: tuple[datetime, ...],
    inner_start: datetime,
    inner_end: datetime,
    fine: timedelta | None,
    grains: tuple[timedelta, ...],
) -> CoarsePlan | None:
    best, best_cost = None, float("inf") if fine is None else (inner_end - inner_start) / fine
    # Cheap first: the fewest rows each grain could read (every moved row an hour); listing them costs more.
    least = sorted((_least_cost(starts, grain, inner_start, inner_end), grain) for grain in grains)
    for least_cost, grain in least:
        if least_cost >= best_cost:
            break
        start, end = ceil_to(inner_start, grain), floor_to(inner_end, grain)
        moved = nearest_on_grain(starts, grain)
        hours, quarters = moved_hours_and_quarters(starts, moved, start, end)
        cost = _rows(grain, inner_start, inner_end) + MOVED_ROW_COST * (len(hours) + len(quarters))
        if cost < best_cost:
            best, best_cost = CoarsePlan(grain, start, end, tuple(moved), tuple(hours), tuple(quarters)), cost
    return best


_cached_plan = lru_cache(maxsize=32)(_plan)


def _rows(grain: timedelta, inner_start: datetime, inner_end: datetime) -> float:
    """Rows read per tag besides the moved ones: whole rows of `grain`, quarter hours outside them (inf: none)."""
    start, end = ceil_to(inner_start, grain), floor_to(inner_end, grain)
    if start >= end:
        return float("inf")
    return (end - start) / grain + ((start - inner_start) + (inner_end - end)) / QUARTER_HOUR


def _least_cost(starts: Sequence[datetime], grain: timedelta, inner_start: datetime, inner_end: datetime) -> float:
    moved = nearest_on_grain(starts, grain)
    away = sum(abs(to - start) // QUARTER_HOUR for start, to in zip(starts, moved, strict=True))
    return _rows(grain, inner_start, inner_end) + MOVED_ROW_COST * away / 4


def moved_hours_and_quarters(
    starts: Sequence[datetime], moved: Sequence[datetime], first: datetime, end: datetime
) -> tuple[list[datetime], list[datetime]]:
    """The whole hours, and the quarter hours outside them, in [first, end) that may lie in another slot than
    their coarse row: those between a start (on the quarter hour there) and its moved start, each once.
    An hour with a start inside is listed as its quarter hours: a moved row must lie in one slot. One listed
    that lies in its row's slot is added to that slot and taken back: harmless."""
    stretches = sorted(
        (max(min(start, to), first), min(max(start, to), end)) for start, to in zip(starts, moved, strict=True)
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
    """Sorted stretches of time, overlapping ones joined (a repeated moved start can make two overlap)."""
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

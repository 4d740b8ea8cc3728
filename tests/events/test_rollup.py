"""Which rollup a chart of days reads, and which of its rows it moves between buckets (events/rollup.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studytrack.events.rollup import (
    DAY,
    HOUR,
    QUARTER_HOUR,
    SIX_HOURS,
    coarse_plan,
    moved_hours_and_quarters,
    nearest_on_grain,
)

DAY1, DAY2, DAY3 = (datetime(2025, 1, d, tzinfo=UTC) for d in (6, 7, 8))


def at(day: datetime, hours: float) -> datetime:
    return day + timedelta(hours=hours)


def test_days_starting_an_hour_before_utc_midnight_move_that_hour() -> None:
    starts = [at(DAY1, -1), at(DAY2, -1), at(DAY3, -1)]  # UTC+1 midnights
    midnights = nearest_on_grain(starts, DAY)
    assert midnights == [DAY1, DAY2, DAY3]
    assert moved_hours_and_quarters(starts, midnights, DAY1, DAY3) == ([at(DAY2, -1), at(DAY3, -1)], [])


def test_a_half_hour_offset_moves_whole_hours_and_the_quarter_hours_beside_them() -> None:
    starts = [at(DAY1, 18.5), at(DAY2, 18.5)]  # UTC+05:30 midnights: 5.5 hours before UTC's
    hours, quarters = moved_hours_and_quarters(starts, nearest_on_grain(starts, DAY), DAY1, DAY3)
    assert hours == [at(DAY1, h) for h in range(19, 24)] + [at(DAY2, h) for h in range(19, 24)]
    assert quarters == [at(DAY1, 18.5), at(DAY1, 18.75), at(DAY2, 18.5), at(DAY2, 18.75)]


def test_an_hour_with_a_bucket_start_inside_is_moved_as_quarter_hours() -> None:
    starts = [at(DAY1, 2), at(DAY1, 2.25)]  # two slots within one hour (a repeated local interval)
    hours, quarters = moved_hours_and_quarters(starts, nearest_on_grain(starts, DAY), DAY1, DAY2)
    assert hours == [at(DAY1, 0), at(DAY1, 1)]
    assert quarters == [at(DAY1, 2)]


def test_overlapping_stretches_list_each_row_once() -> None:
    starts = [at(DAY1, 20), at(DAY1, 22)]  # both nearest to the next midnight
    assert moved_hours_and_quarters(starts, nearest_on_grain(starts, DAY), DAY1, DAY3) == (
        [at(DAY1, h) for h in range(20, 24)],
        [],
    )


def year_of_days(offset_hours: float) -> tuple[datetime, ...]:
    """The starts of 2025's local days (and the next one's) in a zone this many hours ahead of UTC, no DST."""
    first = datetime(2025, 1, 1, tzinfo=UTC)
    return tuple(at(first + timedelta(days=n), -offset_hours) for n in range(366))


YEAR = (datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


def test_a_year_of_days_near_utc_reads_the_daily_rollup_moving_an_hour_a_day() -> None:
    plan = coarse_plan(year_of_days(1), *YEAR, fine=HOUR)  # UTC+1
    assert plan is not None
    assert (plan.grain, plan.start, plan.end) == (DAY, *YEAR)
    assert (len(plan.moved_starts), len(plan.hours), plan.quarters) == (366, 365, ())


def test_a_year_of_days_far_from_utc_reads_the_six_hour_rollup_moving_at_most_three_hours_a_day() -> None:
    for offset in (9, -8, -10):  # Tokyo, Los Angeles in winter, Honolulu: 9, 8, 10 hours from UTC midnight
        plan = coarse_plan(year_of_days(offset), *YEAR, fine=HOUR)
        assert plan is not None
        assert plan.grain == SIX_HOURS
        assert len(plan.hours) <= 3 * 365
        assert plan.quarters == ()


def test_a_half_hour_zone_reads_the_six_hour_rollup_moving_two_quarter_hours_a_day() -> None:
    plan = coarse_plan(year_of_days(5.5), *YEAR, fine=QUARTER_HOUR)  # India: days begin at 18:30 UTC
    assert plan is not None
    assert (plan.grain, plan.hours, len(plan.quarters)) == (SIX_HOURS, (), 2 * 365)


def test_a_chart_too_short_for_a_whole_coarse_row_reads_the_fine_rollup() -> None:
    starts = (at(DAY1, 1), at(DAY1, 25))  # one local day from 01:00 UTC: no whole UTC day
    # Three six-hour rows and the 24 quarter hours beside them: more rows than the day's 24 hours.
    assert coarse_plan(starts, at(DAY1, 1), at(DAY1, 25), fine=HOUR) is None

"""Which rollup rows a daily chart moves between buckets (events/rollup.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studytrack.events.rollup import daily_plan, moved_hours_and_quarters, nearest_midnights

DAY1, DAY2, DAY3 = (datetime(2025, 1, d, tzinfo=UTC) for d in (6, 7, 8))


def at(day: datetime, hours: float) -> datetime:
    return day + timedelta(hours=hours)


def test_days_starting_an_hour_before_utc_midnight_move_that_hour() -> None:
    starts = [at(DAY1, -1), at(DAY2, -1), at(DAY3, -1)]  # UTC+1 midnights
    midnights = nearest_midnights(starts)
    assert midnights == [DAY1, DAY2, DAY3]
    assert moved_hours_and_quarters(starts, midnights, DAY1, DAY3) == ([at(DAY2, -1), at(DAY3, -1)], [])


def test_a_half_hour_offset_moves_whole_hours_and_the_quarter_hours_beside_them() -> None:
    starts = [at(DAY1, 18.5), at(DAY2, 18.5)]  # UTC+05:30 midnights: 5.5 hours before UTC's
    hours, quarters = moved_hours_and_quarters(starts, nearest_midnights(starts), DAY1, DAY3)
    assert hours == [at(DAY1, h) for h in range(19, 24)] + [at(DAY2, h) for h in range(19, 24)]
    assert quarters == [at(DAY1, 18.5), at(DAY1, 18.75), at(DAY2, 18.5), at(DAY2, 18.75)]


def test_an_hour_with_a_bucket_start_inside_is_moved_as_quarter_hours() -> None:
    starts = [at(DAY1, 2), at(DAY1, 2.25)]  # two slots within one hour (a repeated local interval)
    hours, quarters = moved_hours_and_quarters(starts, nearest_midnights(starts), DAY1, DAY2)
    assert hours == [at(DAY1, 0), at(DAY1, 1)]
    assert quarters == [at(DAY1, 2)]


def test_overlapping_stretches_list_each_row_once() -> None:
    starts = [at(DAY1, 20), at(DAY1, 22)]  # both nearest to the next midnight
    assert moved_hours_and_quarters(starts, nearest_midnights(starts), DAY1, DAY3) == (
        [at(DAY1, h) for h in range(20, 24)],
        [],
    )


def test_a_year_of_days_near_utc_reads_the_daily_rollup_and_far_from_it_does_not() -> None:
    first, days = datetime(2025, 1, 1, tzinfo=UTC), 365
    near = tuple(at(first + timedelta(days=n), -1) for n in range(days + 1))  # UTC+1: one hour moves a day
    far = tuple(at(first + timedelta(days=n), -9) for n in range(days + 1))  # UTC+9: nine hours
    end = first + timedelta(days=days)
    plan = daily_plan(near, first, end, rows_per_day=24)
    assert plan is not None
    midnights, hours, quarters = plan
    assert (len(midnights), len(hours), quarters) == (days + 1, days, ())
    assert daily_plan(far, first, end, rows_per_day=24) is None  # 1 + 3.5 x 9 rows a day: more than 24 hours
    assert daily_plan(far, first, end, rows_per_day=96) is not None  # but fewer than 96 quarter hours

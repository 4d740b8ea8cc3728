"""Bucket boundaries as instants give exactly the buckets of local-time bucketing, around every DST change."""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from studytrack.events.bounds import BucketBounds, bucket_bounds
from studytrack.events.durations import parse_duration
from studytrack.events.rollup import HOUR, QUARTER_HOUR
from studytrack.events.service import _slot_items
from tests.helpers import local_bucket, to_instant

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "America/Santiago"]
WIDTHS = [
    "15 minutes", "20 minutes", "30 minutes", "45 minutes", "1 hour", "2 hours", "7 hours", "1 day", "1 week",
    "1 month",
]  # fmt: skip


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """Instants (to the hour) just after the zone's UTC offset changes during `year`."""
    moment, found = datetime(year, 1, 1, tzinfo=UTC), []
    while moment.year == year:
        after = moment + timedelta(hours=1)
        if moment.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset():
            found.append(after)
        moment = after
    return found


def oracle_bucket(moment: datetime, width: str, zone: ZoneInfo) -> datetime:
    count, unit = width.split()
    return to_instant(local_bucket(moment.astimezone(zone).replace(tzinfo=None), int(count), unit.rstrip("s")), zone)


def bucket_at(bounds: BucketBounds, moment: datetime) -> datetime:
    return bounds.labels[bounds.bucket_of_slot[bisect_right(bounds.starts, moment) - 1]]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("tz", ZONES)
def test_every_minute_around_each_dst_change_lands_in_its_local_bucket(tz: str, width: str) -> None:
    zone = ZoneInfo(tz)
    changes = transitions(zone, 2024) + transitions(zone, 2025)
    assert changes or tz == "Asia/Kathmandu"
    for change in changes or [datetime(2024, 6, 1, tzinfo=UTC)]:
        start, end = change - timedelta(hours=30, minutes=7), change + timedelta(hours=30)
        bounds = bucket_bounds(parse_duration(width), tz, start, end)
        assert bounds.starts[0] <= start
        assert list(bounds.starts) == sorted(set(bounds.starts))
        assert list(bounds.labels) == sorted(set(bounds.labels))
        moment, seen = start, set()
        while moment < end:
            assert bucket_at(bounds, moment) == oracle_bucket(moment, width, zone)
            seen.add(bucket_at(bounds, moment))
            moment += timedelta(minutes=1)
        assert seen == set(bounds.labels)  # fill=true lists exactly the buckets the range touches


def test_only_a_bucket_starting_inside_a_repeated_hour_is_split_into_two_slots() -> None:
    autumn, spring = datetime(2024, 11, 3, tzinfo=UTC), datetime(2024, 3, 10, tzinfo=UTC)
    quarter, hour = parse_duration("15 minutes"), parse_duration("1 hour")
    assert not bucket_bounds(quarter, "America/New_York", autumn, autumn + timedelta(days=1)).slot_is_bucket
    assert bucket_bounds(quarter, "America/New_York", spring, spring + timedelta(days=1)).slot_is_bucket
    assert bucket_bounds(quarter, "Asia/Kathmandu", autumn, autumn + timedelta(days=1)).slot_is_bucket
    for tz in ZONES:
        for width in ["1 hour", "1 day", "1 week", "1 month", "1 year"]:
            start = datetime(2024, 1, 1, tzinfo=UTC)
            assert bucket_bounds(parse_duration(width), tz, start, start + timedelta(days=730)).slot_is_bucket
    assert bucket_bounds(hour, "Australia/Lord_Howe", autumn, autumn + timedelta(days=365)).slot_is_bucket


def test_rollup_rows_fit_the_buckets_only_when_every_start_is_on_the_quarter_hour() -> None:
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    kathmandu = bucket_bounds(parse_duration("1 day"), "Asia/Kathmandu", start, end)
    assert kathmandu.on_grid(start, end, QUARTER_HOUR)
    assert not kathmandu.on_grid(start, end, HOUR)
    assert bucket_bounds(parse_duration("1 day"), "Europe/Berlin", start, end).on_grid(start, end, HOUR)
    assert not bucket_bounds(parse_duration("20 minutes"), "UTC", start, end).on_grid(start, end, QUARTER_HOUR)
    old = datetime(1900, 1, 1, tzinfo=UTC)  # local mean time: +00:19:32 in Amsterdam
    bounds = bucket_bounds(parse_duration("1 day"), "Europe/Amsterdam", old, old + timedelta(days=5))
    assert not bounds.on_grid(old, old + timedelta(days=5), QUARTER_HOUR)


def test_a_row_before_the_first_bucket_is_an_error_never_a_wrong_bucket() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    bounds = bucket_bounds(parse_duration("1 day"), "UTC", start, start + timedelta(days=2))
    (item,) = _slot_items([(2, "cka", 30, 1)], bounds, fill=False, tags=[], spellings={"cka": "CKA"})
    assert (item["bucket"], item["tag"]) == (bounds.shown[1], "CKA")
    with pytest.raises(RuntimeError, match="before the first bucket"):
        _slot_items([(0, "cka", 30, 1)], bounds, fill=False, tags=[], spellings={"cka": "CKA"})

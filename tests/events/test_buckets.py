"""GET /api/events/: minutes and counts per bucket and tag, in the caller's timezone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.databases import Database
from tests.helpers import Session, expected_buckets, insert_sessions, parse_items


def buckets(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/events/", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_sessions_are_summed_per_day_and_tag(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 6, 8, 54, tzinfo=UTC), "cka", 25),
            Session(datetime(2025, 1, 6, 13, 50, tzinfo=UTC), "cka", 20),
            Session(datetime(2025, 1, 6, 14, 0, tzinfo=UTC), "ckad", 60),
            Session(datetime(2025, 1, 7, 9, 10, tzinfo=UTC), "cka", 30),
        ],
    )
    items = buckets(client, start="2025-01-06", end="2025-01-08")
    assert items == [
        {"bucket": "2025-01-06T00:00:00Z", "tag": "cka", "minutes": 45, "count": 2, "avg_minutes": 22.5},
        {"bucket": "2025-01-06T00:00:00Z", "tag": "ckad", "minutes": 60, "count": 1, "avg_minutes": 60.0},
        {"bucket": "2025-01-07T00:00:00Z", "tag": "cka", "minutes": 30, "count": 1, "avg_minutes": 30.0},
    ]


def test_days_start_at_local_midnight_of_the_callers_timezone(client: TestClient, db: Database) -> None:
    # 23:30 UTC on the 6th is already the 7th in Berlin.
    insert_sessions(db, [Session(datetime(2025, 1, 6, 23, 30, tzinfo=UTC), "cka", 25)])
    items = buckets(client, start="2025-01-06", end="2025-01-09", tz="Europe/Berlin")
    assert [item["bucket"] for item in items] == ["2025-01-07T00:00:00+01:00"]


def test_a_dst_day_has_23_hours_and_its_bucket_keeps_its_own_offset(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 3, 29, 23, 30, tzinfo=UTC), "cka", 10),  # 00:30 CET on the 30th
            Session(datetime(2025, 3, 30, 21, 59, tzinfo=UTC), "cka", 20),  # 23:59 CEST on the 30th
            Session(datetime(2025, 3, 30, 22, 0, tzinfo=UTC), "cka", 40),  # 00:00 CEST on the 31st
        ],
    )
    items = buckets(client, start="2025-03-29", end="2025-04-01", tz="Europe/Berlin")
    assert [(item["bucket"], item["minutes"]) for item in items] == [
        ("2025-03-30T00:00:00+01:00", 30),
        ("2025-03-31T00:00:00+02:00", 40),
    ]


def test_weeks_start_on_monday(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 5, 12, tzinfo=UTC), "cka", 10),  # Sunday
            Session(datetime(2025, 1, 6, 12, tzinfo=UTC), "cka", 20),  # Monday
            Session(datetime(2025, 1, 12, 12, tzinfo=UTC), "cka", 30),  # Sunday
        ],
    )
    items = buckets(client, duration="1 week", start="2024-12-30", end="2025-01-20")
    assert [(item["bucket"], item["minutes"]) for item in items] == [
        ("2024-12-30T00:00:00Z", 10),
        ("2025-01-06T00:00:00Z", 50),
    ]


def test_months_start_on_the_first_in_local_time(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 31, 23, 30, tzinfo=UTC), "cka", 10),  # Feb 1st in Tokyo
            Session(datetime(2025, 2, 15, tzinfo=UTC), "cka", 20),
            Session(datetime(2025, 3, 31, 16, tzinfo=UTC), "cka", 30),  # April 1st in Tokyo
        ],
    )
    items = buckets(client, duration="1 month", start="2025-01-01", end="2025-05-01", tz="Asia/Tokyo")
    assert [(item["bucket"], item["minutes"]) for item in items] == [
        ("2025-02-01T00:00:00+09:00", 30),
        ("2025-04-01T00:00:00+09:00", 30),
    ]


def test_quarters_and_years_align_to_calendar(client: TestClient, db: Database) -> None:
    insert_sessions(db, [Session(datetime(2025, 5, 20, tzinfo=UTC), "cka", 15)])
    assert buckets(client, duration="3 months", start="2025-01-01", end="2026-01-01")[0]["bucket"] == (
        "2025-04-01T00:00:00Z"
    )
    assert buckets(client, duration="1 year", start="2020-01-01", end="2026-01-01")[0]["bucket"] == (
        "2025-01-01T00:00:00Z"
    )


def test_tags_filter_is_case_insensitive_and_repeatable(client: TestClient, db: Database) -> None:
    day = datetime(2025, 1, 6, 12, tzinfo=UTC)
    insert_sessions(db, [Session(day, "cka", 10), Session(day, "ckad", 20), Session(day, "terraform", 30)])
    items = buckets(client, tags=["CKA", " Terraform "], start="2025-01-06", end="2025-01-07")
    assert [item["tag"] for item in items] == ["cka", "terraform"]


def test_user_id_filter_keeps_one_persons_sessions(client: TestClient, db: Database) -> None:
    day = datetime(2025, 1, 6, 12, tzinfo=UTC)
    insert_sessions(db, [Session(day, "cka", 10, "ana"), Session(day, "cka", 20, "bo"), Session(day, "cka", 40)])
    assert buckets(client, user_id="ana", start="2025-01-06", end="2025-01-07")[0]["minutes"] == 10
    assert buckets(client, start="2025-01-06", end="2025-01-07")[0]["minutes"] == 70


def test_start_is_inclusive_and_end_exclusive(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 6, tzinfo=UTC), "cka", 10),
            Session(datetime(2025, 1, 7, tzinfo=UTC), "cka", 20),
        ],
    )
    items = buckets(client, start="2025-01-06T00:00:00Z", end="2025-01-07T00:00:00Z")
    assert [item["minutes"] for item in items] == [10]


def test_default_range_is_the_last_30_days(client: TestClient, db: Database) -> None:
    now = datetime.now(UTC)
    insert_sessions(db, [Session(now - timedelta(days=29), "cka", 10), Session(now - timedelta(days=31), "cka", 20)])
    response = client.get("/api/events/")
    body = response.json()
    assert [item["minutes"] for item in body["items"]] == [10]
    span = datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"])
    assert span == timedelta(days=30)


def test_fill_gives_every_bucket_for_each_tag_with_zeros(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 6, 9, tzinfo=UTC), "cka", 10),
            Session(datetime(2025, 1, 8, 9, tzinfo=UTC), "ckad", 20),
        ],
    )
    items = buckets(client, start="2025-01-06", end="2025-01-09", fill=True)
    assert [(item["bucket"][:10], item["tag"], item["minutes"], item["count"]) for item in items] == [
        ("2025-01-06", "cka", 10, 1),
        ("2025-01-06", "ckad", 0, 0),
        ("2025-01-07", "cka", 0, 0),
        ("2025-01-07", "ckad", 0, 0),
        ("2025-01-08", "cka", 0, 0),
        ("2025-01-08", "ckad", 20, 1),
    ]
    assert items[1]["avg_minutes"] is None


def test_fill_with_tags_shows_requested_tags_even_without_sessions(client: TestClient, db: Database) -> None:
    items = buckets(client, tags=["cka"], start="2025-01-06", end="2025-01-08", fill=True, tz="Asia/Kathmandu")
    assert [(item["bucket"], item["minutes"]) for item in items] == [
        ("2025-01-06T00:00:00+05:45", 0),
        ("2025-01-07T00:00:00+05:45", 0),
    ]


def test_fill_across_a_dst_change_has_one_row_per_local_hour(client: TestClient, db: Database) -> None:
    items = buckets(
        client,
        duration="1 hour",
        tags=["cka"],
        fill=True,
        tz="Europe/Berlin",
        start="2025-03-30T00:00:00",
        end="2025-03-30T05:00:00",
    )
    # 02:00 local does not exist that night: 4 real hours in a 5-hour local span.
    assert [item["bucket"] for item in items] == [
        "2025-03-30T00:00:00+01:00",
        "2025-03-30T01:00:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-30T04:00:00+02:00",
    ]


def test_fill_on_a_dst_day_lists_the_same_buckets_as_the_data(client: TestClient, db: Database) -> None:
    # TimescaleDB's time_bucket_gapfill would step 05:00Z, 11:00Z, ... here (fixed UTC steps): the filled
    # rows must be the buckets time_bucket itself gives, so the session's bucket is not lost.
    insert_sessions(db, [Session(datetime(2024, 3, 10, 10, tzinfo=UTC), "cka", 5)])
    params = {"duration": "6 hours", "tz": "America/New_York", "start": "2024-03-10", "end": "2024-03-11"}
    items = buckets(client, **params, fill=True)
    assert [(i["bucket"], i["minutes"]) for i in items] == [
        ("2024-03-10T00:00:00-05:00", 0),
        ("2024-03-10T06:00:00-04:00", 5),
        ("2024-03-10T12:00:00-04:00", 0),
        ("2024-03-10T18:00:00-04:00", 0),
    ]


@pytest.mark.parametrize("duration", ["15 minutes", "1 hour", "1 day"])
@pytest.mark.parametrize("night", ["2024-03-10", "2024-11-03"], ids=["spring", "autumn"])
def test_buckets_across_a_dst_change_match_local_time_bucketing(
    client: TestClient, db: Database, duration: str, night: str
) -> None:
    # 15-minute buckets start inside the skipped or repeated hour (in autumn each is two slots, added up);
    # hours and days do not: all must give local-time answers.
    tz, first = "America/New_York", datetime.fromisoformat(night).replace(tzinfo=UTC)
    sessions = [Session(first + timedelta(minutes=7 * n), "cka", 1 + n % 50) for n in range(0, 24 * 60 // 7)]
    insert_sessions(db, sessions)
    start, end = first + timedelta(hours=3), first + timedelta(hours=11)
    params = {"duration": duration, "tz": tz, "start": start.isoformat(), "end": end.isoformat()}
    count, unit = duration.split()
    expected = expected_buckets(sessions, count=int(count), unit=unit.rstrip("s"), tz=tz, start=start, end=end)
    assert parse_items(buckets(client, **params)) == expected
    filled = buckets(client, **params, fill=True)
    assert parse_items([item for item in filled if item["count"]]) == expected


YEAR_ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Kathmandu",
]


@pytest.mark.parametrize("tz", YEAR_ZONES)
@pytest.mark.parametrize("duration", ["1 day", "1 week", "1 month"])
def test_a_year_of_every_hour_counts_each_session_in_its_local_bucket(
    client: TestClient, db: Database, tz: str, duration: str
) -> None:
    # A session in every UTC hour of 2024 (at every minute of the hour in turn), the ends ragged: whole days, the
    # hours and quarter hours between a zone's midnight and UTC's, and raw rows at both ends all land where
    # local-time bucketing puts them, across both DST changes.
    first = datetime(2024, 1, 1, tzinfo=UTC)
    hours = range(366 * 24)
    sessions = [Session(first + timedelta(hours=n, minutes=n % 60), ("cka", "go")[n % 2], 1 + n % 7) for n in hours]
    insert_sessions(db, sessions)
    start, end = first + timedelta(hours=5, minutes=20), first + timedelta(days=365, hours=7, minutes=40)
    params = {"duration": duration, "tz": tz, "start": start.isoformat(), "end": end.isoformat()}
    count, unit = duration.split()
    expected = expected_buckets(sessions, count=int(count), unit=unit, tz=tz, start=start, end=end)
    assert parse_items(buckets(client, **params)) == expected


def test_bucket_label_carries_the_utc_offset_of_the_callers_zone(client: TestClient, db: Database) -> None:
    insert_sessions(db, [Session(datetime(2025, 7, 1, 12, tzinfo=UTC), "cka", 10)])
    items = buckets(client, start="2025-07-01", end="2025-07-02", tz="America/New_York")
    assert items[0]["bucket"] == "2025-07-01T00:00:00-04:00"


BAD_QUERIES = [
    pytest.param({"duration": "1 fortnight"}, "duration", id="unknown unit"),
    pytest.param({"duration": "0 days"}, "duration", id="zero width"),
    pytest.param({"duration": "1 day; DROP TABLE events"}, "duration", id="SQL in duration"),
    pytest.param({"duration": "-1 day"}, "duration", id="negative width"),
    pytest.param({"duration": "1.5 hours"}, "duration", id="fractional width"),
    pytest.param({"tz": "Mars/Olympus"}, "tz", id="unknown zone"),
    pytest.param({"tz": "'; DROP TABLE events; --"}, "tz", id="SQL in zone"),
    pytest.param({"start": "soon"}, "start", id="start not a time"),
    pytest.param({"start": "0001-01-01T00:00:00"}, "start", id="start before 1900"),
    pytest.param({"end": "9999-12-31T23:59:59"}, "end", id="end after 2199"),
    pytest.param({"start": "2025-01-08", "end": "2025-01-07"}, "", id="start after end"),
    pytest.param({"start": "2025-01-08", "end": "2025-01-08"}, "", id="empty range"),
    pytest.param({"fill": "maybe"}, "fill", id="fill not boolean"),
    pytest.param({"tags": ""}, "tags[0]", id="empty tag"),
    pytest.param({"tags": "x" * 65}, "tags[0]", id="tag too long"),
    pytest.param({"tag": "cka"}, "tag", id="unknown parameter"),
]


@pytest.mark.parametrize(("params", "field"), BAD_QUERIES)
def test_bad_query_is_a_422_naming_the_parameter(
    client: TestClient, db: Database, params: dict[str, Any], field: str
) -> None:
    response = client.get("/api/events/", params=params)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == [field]


def test_too_many_buckets_is_a_422_that_says_what_to_change(client: TestClient, db: Database) -> None:
    response = client.get("/api/events/", params={"duration": "1 minute", "start": "1990-01-01", "end": "2020-01-01"})
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "too_many_buckets"
    assert "wider duration or a shorter range" in error["message"]


ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Santiago",
]
DURATIONS = [
    (15, "minute"),
    (1, "hour"),
    (6, "hour"),
    (1, "day"),
    (2, "day"),
    (1, "week"),
    (1, "month"),
    (3, "month"),
    (1, "year"),
]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), duration=st.sampled_from(DURATIONS), tz=st.sampled_from(ZONES))
def test_bucket_sums_match_an_independent_computation(
    app_client: TestClient, database: Database, data: st.DataObject, duration: tuple[int, str], tz: str
) -> None:
    count, unit = duration
    step = timedelta(hours=1) if unit in ("minute", "hour") else timedelta(days=1)
    start = data.draw(
        st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(ZoneInfo(tz)))
    )
    end = (start.astimezone(UTC) + step * data.draw(st.integers(1, 200))).astimezone(ZoneInfo(tz))
    margin = (end - start) // 4  # some sessions fall just outside the range
    sessions = data.draw(
        st.lists(
            st.builds(
                Session,
                time=st.datetimes(
                    min_value=(start - margin).astimezone(UTC).replace(tzinfo=None),
                    max_value=(end + margin).astimezone(UTC).replace(tzinfo=None),
                    timezones=st.just(UTC),
                ),
                tag=st.sampled_from(["cka", "ckad", "terraform"]),
                minutes=st.integers(1, 1440),
            ),
            max_size=40,
        )
    )
    database.reset()
    insert_sessions(database, sessions)
    params = {"duration": f"{count} {unit}", "tz": tz, "start": start.isoformat(), "end": end.isoformat()}
    items = buckets(app_client, **params)
    assert parse_items(items) == expected_buckets(sessions, count=count, unit=unit, tz=tz, start=start, end=end)

    filled = buckets(app_client, **params, fill=True)
    assert [item for item in filled if item["count"]] == items
    tags = sorted({item["tag"] for item in items})
    bucket_starts = sorted({item["bucket"] for item in filled}, key=datetime.fromisoformat)
    assert len(filled) == len(tags) * len(bucket_starts)

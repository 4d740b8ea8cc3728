"""GET /api/stats/: totals in the CSV study tracker's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.databases import Database
from tests.helpers import Session, insert_sessions


def test_totals_overall_and_per_tag(client: TestClient, db: Database) -> None:
    day = datetime(2025, 1, 6, tzinfo=UTC)
    insert_sessions(db, [Session(day, "cka", 25), Session(day, "cka", 35), Session(day, "terraform", 50, "ana")])
    assert client.get("/api/stats/").json() == {
        "total_time": 110,
        "total_sessions": 3,
        "time_by_tag": {"cka": 60, "terraform": 50},
        "sessions_by_tag": {"cka": 2, "terraform": 1},
    }
    assert client.get("/api/stats/", params={"user_id": "ana"}).json()["total_time"] == 50
    assert client.get("/api/stats/", params={"tags": "CKA"}).json()["total_sessions"] == 2
    assert client.get("/api/stats/", params={"start": "2025-01-07"}).json()["total_sessions"] == 0


def test_stats_of_an_empty_database_are_zeros(client: TestClient, db: Database) -> None:
    assert client.get("/api/stats/").json() == {
        "total_time": 0,
        "total_sessions": 0,
        "time_by_tag": {},
        "sessions_by_tag": {},
    }


RANGES = [
    ("2025-01-06T10:05:00Z", "2025-01-06T13:30:00Z"),  # ragged at both ends
    ("2025-01-06T10:00:00Z", "2025-01-06T12:00:00Z"),  # whole hours
    ("2025-01-06T10:05:00Z", "2025-01-06T10:50:00Z"),  # inside one hour
    ("2025-01-06T10:05:00Z", "2025-01-09T13:30:00Z"),  # whole days between ragged hours
    ("2025-01-07T00:00:00Z", "2025-01-09T00:00:00Z"),  # whole days
    ("2025-01-06T23:00:00Z", "2025-01-08T01:00:00Z"),  # whole hours around a whole day
    ("2025-01-07T10:00:00Z", None),
    (None, "2025-01-08T11:20:00Z"),
    ("2025-01-06T10:05:00Z", None),
    (None, "2025-01-06T11:20:00Z"),
    (None, None),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_totals_of_any_range_count_exactly_the_sessions_inside_it(
    client: TestClient, db: Database, start: str | None, end: str | None
) -> None:
    first = datetime(2025, 1, 6, 9, tzinfo=UTC)
    sessions = [
        Session(first + timedelta(minutes=7 * n), "cka" if n % 3 else "go", 1 + n % 40, "ana" if n % 2 else None)
        for n in range(60)
    ]
    sessions += [Session(first + timedelta(minutes=53 * n), "cka", 1 + n % 9, "ana") for n in range(8, 120)]  # 4 days
    insert_sessions(db, sessions)
    lower = datetime.fromisoformat(start) if start else datetime.min.replace(tzinfo=UTC)
    upper = datetime.fromisoformat(end) if end else datetime.max.replace(tzinfo=UTC)
    params = {key: value for key, value in (("start", start), ("end", end)) if value}
    for user in (None, "ana"):  # everyone's totals (the rollups) and one person's (their own statement)
        inside = [s for s in sessions if lower <= s.time < upper and user in (None, s.user_id)]
        totals = client.get("/api/stats/", params=params | ({"user_id": user} if user else {})).json()
        assert (totals["total_time"], totals["total_sessions"]) == (sum(s.minutes for s in inside), len(inside))
        assert totals["sessions_by_tag"] == {
            tag: count for tag in ("cka", "go") if (count := sum(1 for s in inside if s.tag == tag))
        }

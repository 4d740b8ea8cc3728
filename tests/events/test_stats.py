"""GET /api/stats/: totals in the CSV study tracker's shape."""

from __future__ import annotations

from datetime import UTC, datetime

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

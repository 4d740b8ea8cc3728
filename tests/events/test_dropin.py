"""The CSV study tracker's API (`/sessions`, `/stats`, `/health`): its front end works unchanged against us."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.web.app import create_app
from studytrack.web.routes import dropin
from tests.databases import Database, count_events
from tests.helpers import Session, insert_sessions

BASE = datetime(2025, 1, 6, 8, tzinfo=UTC)
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens


def test_the_root_greets_like_the_tracker(client: TestClient) -> None:
    response = client.get("/", headers={"Authorization": ""})
    assert (response.status_code, response.json()) == (200, {"message": "DevOps Study Tracker API"})


def test_posting_a_session_answers_200_in_the_trackers_shape_once_stored(client: TestClient, db: Database) -> None:
    response = client.post("/sessions", json={"minutes": 25, "tag": "CKA"})
    assert response.status_code == 200
    session = response.json()
    assert set(session) == {"id", "timestamp", "minutes", "tag"}
    assert (session["minutes"], session["tag"]) == (25, "CKA")
    started = datetime.fromisoformat(session["timestamp"])
    assert started.utcoffset() == timedelta(0)
    assert abs(started - datetime.now(UTC)) < timedelta(seconds=30)
    stored = client.get(f"/api/events/{session['id']}/").json()
    assert (stored["tag"], stored["minutes"], stored["source"]) == ("CKA", 25, "study-tracker")
    assert count_events(db) == 1


def test_like_the_tracker_numeric_strings_are_minutes_and_unknown_fields_are_ignored(
    client: TestClient, db: Database
) -> None:
    response = client.post("/sessions", json={"minutes": "50", "tag": "Terraform", "timestamp": "2020-01-01T00:00"})
    assert response.status_code == 200
    assert response.json()["minutes"] == 50
    started = datetime.fromisoformat(response.json()["timestamp"])
    assert abs(started - datetime.now(UTC)) < timedelta(seconds=30)  # a session always starts now


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"minutes": 0, "tag": "cka"}, "minutes"),
        ({"minutes": -5, "tag": "cka"}, "minutes"),
        ({"minutes": 1441, "tag": "cka"}, "minutes"),
        ({"minutes": 2.5, "tag": "cka"}, "minutes"),
        ({"minutes": "abc", "tag": "cka"}, "minutes"),
        ({"tag": "cka"}, "minutes"),
        ({"minutes": 25, "tag": ""}, "tag"),
        ({"minutes": 25, "tag": "   "}, "tag"),
        ({"minutes": 25}, "tag"),
    ],
)
def test_a_bad_session_is_a_422_in_our_error_shape_and_stores_nothing(
    client: TestClient, db: Database, body: dict[str, Any], field: str
) -> None:
    response = client.post("/sessions", json=body)
    assert response.status_code == 422
    error = response.json()
    assert (error["status"], error["code"]) == (422, "validation_error")
    assert error["message"].startswith(f"{field}: ")
    assert [detail["field"] for detail in error["details"]] == [field]
    assert count_events(db) == 0


def test_sessions_are_listed_oldest_first_in_the_trackers_shape(client: TestClient, db: Database) -> None:
    insert_sessions(
        db, [Session(BASE + timedelta(hours=2), "cka", 50), Session(BASE, "ckad", 25), Session(BASE, "cka", 15)]
    )
    sessions = client.get("/sessions").json()
    assert [set(session) for session in sessions] == [{"id", "timestamp", "minutes", "tag"}] * 3
    listed = [(datetime.fromisoformat(s["timestamp"]), s["tag"], s["minutes"]) for s in sessions]
    assert sorted(listed[:2]) == [(BASE, "cka", 15), (BASE, "ckad", 25)]
    assert listed[2] == (BASE + timedelta(hours=2), "cka", 50)
    assert len({uuid.UUID(session["id"]) for session in sessions}) == 3


def test_the_tag_filter_ignores_case_and_an_empty_one_means_all(client: TestClient, db: Database) -> None:
    insert_sessions(
        db, [Session(BASE, "github actions", 20), Session(BASE, "cka", 25), Session(BASE, "github actions", 90)]
    )
    actions = client.get("/sessions", params={"tag": "GitHub Actions"}).json()
    assert sorted(session["minutes"] for session in actions) == [20, 90]
    assert [session["tag"] for session in client.get("/sessions", params={"tag": "CKA"}).json()] == ["cka"]
    assert len(client.get("/sessions", params={"tag": ""}).json()) == 3
    assert client.get("/sessions", params={"tag": "terraform"}).json() == []


def test_a_tag_filter_that_cannot_be_a_tag_is_a_422(client: TestClient, db: Database) -> None:
    response = client.get("/sessions", params={"tag": "x" * 65})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "tag"


def test_past_the_cap_the_newest_sessions_are_listed_oldest_first(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dropin, "MAX_SESSIONS", 5)
    monkeypatch.setattr(dropin, "PAGE_SIZE", 2)
    insert_sessions(db, [Session(BASE + timedelta(minutes=i), "cka", i + 1) for i in range(8)])
    assert [session["minutes"] for session in client.get("/sessions").json()] == [4, 5, 6, 7, 8]


def test_stats_sum_minutes_and_sessions_per_tag(client: TestClient, db: Database) -> None:
    assert client.get("/stats").json() == {
        "total_time": 0,
        "time_by_tag": {},
        "total_sessions": 0,
        "sessions_by_tag": {},
    }
    client.post("/sessions", json={"minutes": 25, "tag": "CKA"})
    insert_sessions(db, [Session(BASE, "cka", 35), Session(BASE, "terraform", 50)])
    assert client.get("/stats").json() == {
        "total_time": 110,
        "time_by_tag": {"CKA": 60, "terraform": 50},
        "total_sessions": 3,
        "sessions_by_tag": {"CKA": 2, "terraform": 1},
    }


def test_health_is_healthy_while_the_database_answers(client: TestClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "healthy"})


def test_health_is_a_503_in_our_error_shape_when_the_database_is_down(settings: Settings) -> None:
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0)
    with TestClient(create_app(fast, database_url=UNREACHABLE)) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unhealthy",
        "code": "database_unavailable",
        "message": "the database is unreachable",
    }

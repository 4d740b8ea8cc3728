"""GET /api/events/: a chart carries a bounded number of rows (buckets x tags) and distinct tags."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from tests.databases import Database
from tests.helpers import Session, insert_sessions

DAY = datetime(2025, 1, 6, 8, tzinfo=UTC)
WEEK = {"duration": "1 day", "start": "2025-01-06", "end": "2025-01-13"}  # 7 buckets


@pytest.fixture
def limited(client: TestClient) -> Iterator[TestClient]:
    """The app with small chart caps for this test: 20 rows, 3 tags (one app: the test backend has one session)."""
    state = client.app.state  # type: ignore[attr-defined]
    original = state.settings
    state.settings = dataclasses.replace(original, max_chart_rows=20, max_chart_tags=3)
    yield client
    state.settings = original


def assert_refused(response: object, code: str) -> None:
    assert getattr(response, "status_code", None) == 422, getattr(response, "text", "")
    error = response.json()  # type: ignore[attr-defined]
    assert error["code"] == code
    assert "tags=" in error["message"]


def test_a_filled_chart_of_more_rows_than_the_cap_is_refused_before_the_query(
    limited: TestClient, db: Database
) -> None:
    response = limited.get("/api/events/", params=WEEK | {"fill": "true", "tags": ["a", "b", "c"]})  # 21 rows
    assert_refused(response, "too_many_rows")


def test_a_chart_asking_for_more_tags_than_the_cap_is_refused(limited: TestClient, db: Database) -> None:
    assert_refused(limited.get("/api/events/", params=WEEK | {"tags": ["a", "b", "c", "d"]}), "too_many_tags")


def test_a_chart_whose_data_holds_more_tags_than_the_cap_is_refused_and_says_how_to_narrow(
    limited: TestClient, db: Database
) -> None:
    insert_sessions(db, [Session(DAY, tag, 10) for tag in ("a", "b", "c", "d")])
    assert_refused(limited.get("/api/events/", params=WEEK), "too_many_tags")
    narrowed = limited.get("/api/events/", params=WEEK | {"tags": ["a", "b"]})
    assert narrowed.status_code == 200
    assert {item["tag"] for item in narrowed.json()["items"]} == {"a", "b"}


def test_a_chart_whose_data_fills_more_rows_than_the_cap_is_refused(limited: TestClient, db: Database) -> None:
    sessions = [Session(DAY + timedelta(hours=hour), tag, 10) for hour in range(12) for tag in ("a", "b")]
    insert_sessions(db, sessions)  # 24 non-empty hourly rows
    assert_refused(limited.get("/api/events/", params=WEEK | {"duration": "1 hour"}), "too_many_rows")
    assert limited.get("/api/events/", params=WEEK | {"duration": "1 hour", "tags": ["a"]}).status_code == 200


def test_totals_listing_more_tags_than_the_cap_are_refused_and_say_how_to_narrow(
    limited: TestClient, db: Database
) -> None:
    insert_sessions(db, [Session(DAY, tag, 10) for tag in ("a", "b", "c", "d")])
    assert_refused(limited.get("/api/stats/"), "too_many_tags")
    assert limited.get("/api/stats/", params={"tags": ["a", "b"]}).json()["total_time"] == 20

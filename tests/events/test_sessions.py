"""GET /api/sessions/: raw sessions newest first, page by page."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.databases import Database
from tests.helpers import Session, insert_sessions

BASE = datetime(2025, 1, 6, 8, tzinfo=UTC)


def test_pages_walk_every_session_once_newest_first(client: TestClient, db: Database) -> None:
    # Several sessions share a start time: the cursor must still neither skip nor repeat any.
    sessions = [Session(BASE + timedelta(hours=i // 3), "cka", i + 1) for i in range(25)]
    insert_sessions(db, sessions)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/sessions/", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25
    assert len({item["id"] for item in seen}) == 25
    times = [datetime.fromisoformat(item["time"]) for item in seen]
    assert times == sorted(times, reverse=True)


def test_filters_by_tag_user_and_range(client: TestClient, db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(BASE, "cka", 10, "ana"),
            Session(BASE + timedelta(days=1), "cka", 20, "ana"),
            Session(BASE + timedelta(days=1), "ckad", 30, "ana"),
            Session(BASE + timedelta(days=1), "cka", 40, "bo"),
        ],
    )
    params = {"tags": "CKA", "user_id": "ana", "start": "2025-01-07T00:00:00Z", "end": "2025-01-08T00:00:00Z"}
    items = client.get("/api/sessions/", params=params).json()["items"]
    assert [item["minutes"] for item in items] == [20]


def test_the_last_page_has_no_cursor(client: TestClient, db: Database) -> None:
    insert_sessions(db, [Session(BASE, "cka", 10)])
    page = client.get("/api/sessions/").json()
    assert len(page["items"]) == 1
    assert page["next_cursor"] is None


@pytest.mark.parametrize("cursor", ["garbage", "e30", "WyJub3QtYS10aW1lIiwgIngiXQ", "!!!"])
def test_a_tampered_cursor_is_a_422(client: TestClient, db: Database, cursor: str) -> None:
    response = client.get("/api/sessions/", params={"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 1001, "ten"])
def test_limit_outside_1_to_1000_is_a_422(client: TestClient, db: Database, limit: Any) -> None:
    response = client.get("/api/sessions/", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "limit"


def test_a_cursor_of_deeply_nested_arrays_is_a_422_not_a_500(client: TestClient, db: Database) -> None:
    for depth in (2000, 150):  # over and under the cursor's length cap: both refused as a client's mistake
        cursor = base64.urlsafe_b64encode(b"[" * depth).decode().rstrip("=")
        response = client.get("/api/sessions/", params={"cursor": cursor})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_cursor"

"""GET /api/badge.svg: total study time of the current day, week, month or year as a shields-style SVG."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from studytrack.web.routes.badge import current_time
from tests.databases import Database
from tests.helpers import Session, insert_sessions

SVG = "{http://www.w3.org/2000/svg}"
WEDNESDAY = datetime(2025, 1, 8, 10, tzinfo=UTC)

Freeze = Callable[[datetime], None]


@pytest.fixture
def freeze(app_client: TestClient) -> Iterator[Freeze]:
    """Set the badge's clock to a fixed instant for this test."""
    overrides = app_client.app.dependency_overrides  # type: ignore[attr-defined]

    def set_now(now: datetime) -> None:
        overrides[current_time] = lambda: now

    yield set_now
    overrides.pop(current_time, None)


def badge_texts(response: Response) -> list[str]:
    """The badge's two texts (label, value), read as XML: the body must be well-formed SVG."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "max-age=300"
    root = ET.fromstring(response.text)
    assert root.tag == f"{SVG}svg"
    texts = [text.text or "" for text in root.iter(f"{SVG}text")]
    title = root.find(f"{SVG}title")
    assert title is not None
    assert title.text == ": ".join(texts)
    assert root.get("aria-label") == title.text
    return texts


def test_this_week_sums_the_tag_from_monday(client: TestClient, db: Database, freeze: Freeze) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 5, 23, 59, tzinfo=UTC), "cka", 100),  # Sunday: last week
            Session(datetime(2025, 1, 6, 0, 0, tzinfo=UTC), "cka", 30),  # Monday 00:00
            Session(datetime(2025, 1, 7, 9, 0, tzinfo=UTC), "cka", 720),
            Session(datetime(2025, 1, 8, 9, 0, tzinfo=UTC), "ckad", 45),  # another tag
            Session(datetime(2025, 1, 12, 23, 59, tzinfo=UTC), "cka", 1),  # Sunday: still this week
            Session(datetime(2025, 1, 13, 0, 0, tzinfo=UTC), "cka", 200),  # next week
        ],
    )
    freeze(WEDNESDAY)
    response = client.get("/api/badge.svg", params={"tags": "CKA", "duration": "1 week"})
    assert badge_texts(response) == ["cka", "12h 31m this week"]


def test_several_tags_are_summed_and_named(client: TestClient, db: Database, freeze: Freeze) -> None:
    day = datetime(2025, 1, 8, 8, tzinfo=UTC)
    insert_sessions(db, [Session(day, "cka", 50), Session(day, "ckad", 25), Session(day, "terraform", 400)])
    freeze(WEDNESDAY)
    response = client.get("/api/badge.svg", params={"tags": ["cka", "ckad", "CKA"], "duration": "1 day"})
    assert badge_texts(response) == ["cka, ckad", "1h 15m today"]


def test_no_tags_is_all_study_time_this_month(client: TestClient, db: Database, freeze: Freeze) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2024, 12, 31, 23, 0, tzinfo=UTC), "cka", 60),
            Session(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), "cka", 5),
            Session(datetime(2025, 1, 31, 23, 0, tzinfo=UTC), "terraform", 600),
            Session(datetime(2025, 2, 1, 0, 0, tzinfo=UTC), "cka", 60),
        ],
    )
    freeze(WEDNESDAY)
    assert badge_texts(client.get("/api/badge.svg", params={"duration": "1 month"})) == ["study", "10h 5m this month"]
    assert badge_texts(client.get("/api/badge.svg", params={"duration": "1 year"})) == ["study", "11h 5m this year"]


def test_the_period_is_the_one_holding_now_in_tz(client: TestClient, db: Database, freeze: Freeze) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 8, 14, 30, tzinfo=UTC), "cka", 20),  # Jan 8, 23:30 in Tokyo
            Session(datetime(2025, 1, 8, 15, 30, tzinfo=UTC), "cka", 40),  # Jan 9, 00:30 in Tokyo
        ],
    )
    freeze(datetime(2025, 1, 8, 16, tzinfo=UTC))  # Jan 9, 01:00 in Tokyo; still Jan 8 in UTC
    tokyo = client.get("/api/badge.svg", params={"duration": "1 day", "tz": "Asia/Tokyo"})
    assert badge_texts(tokyo)[1] == "0h 40m today"
    utc = client.get("/api/badge.svg", params={"duration": "1 day"})
    assert badge_texts(utc)[1] == "1h 0m today"


def test_a_day_with_a_dst_change_is_one_period(client: TestClient, db: Database, freeze: Freeze) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 3, 29, 23, 0, tzinfo=UTC), "cka", 10),  # 00:00 CET, March 30
            Session(datetime(2025, 3, 30, 21, 59, tzinfo=UTC), "cka", 20),  # 23:59 CEST, March 30
            Session(datetime(2025, 3, 30, 22, 0, tzinfo=UTC), "cka", 40),  # 00:00 CEST, March 31
        ],
    )
    freeze(datetime(2025, 3, 30, 12, tzinfo=UTC))
    response = client.get("/api/badge.svg", params={"duration": "1 day", "tz": "Europe/Berlin"})
    assert badge_texts(response)[1] == "0h 30m today"


def test_user_id_keeps_one_persons_sessions(client: TestClient, db: Database, freeze: Freeze) -> None:
    day = datetime(2025, 1, 8, 8, tzinfo=UTC)
    insert_sessions(db, [Session(day, "cka", 10, "ana"), Session(day, "cka", 20, "bo")])
    freeze(WEDNESDAY)
    response = client.get("/api/badge.svg", params={"user_id": "ana"})
    assert badge_texts(response) == ["study", "0h 10m this week"]


def test_tag_names_are_xml_escaped(client: TestClient, db: Database, freeze: Freeze) -> None:
    tag = "<script>alert('x')</script>&\"q\""
    insert_sessions(db, [Session(datetime(2025, 1, 8, 8, tzinfo=UTC), tag, 90)])
    freeze(WEDNESDAY)
    response = client.get("/api/badge.svg", params={"tags": tag})
    assert "<script>" not in response.text
    assert badge_texts(response) == [tag, "1h 30m this week"]


def test_without_sessions_the_badge_says_zero(client: TestClient, db: Database) -> None:
    assert badge_texts(client.get("/api/badge.svg")) == ["study", "0h 0m this week"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"duration": "2 weeks"}, "duration", id="not a calendar period"),
        pytest.param({"duration": "1 hour"}, "duration", id="hour"),
        pytest.param({"tz": "Mars/Olympus"}, "tz", id="unknown zone"),
        pytest.param({"tags": ""}, "tags[0]", id="empty tag"),
        pytest.param({"start": "2025-01-01"}, "start", id="no range on a badge"),
    ],
)
def test_bad_parameters_are_our_422(client: TestClient, db: Database, params: dict[str, str], field: str) -> None:
    response = client.get("/api/badge.svg", params=params)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "validation_error"
    assert [detail["field"] for detail in error["details"]] == [field]


@pytest.fixture
def public_badges(app_client: TestClient) -> Iterator[None]:
    """PUBLIC_BADGES=true for this test."""
    state = app_client.app.state  # type: ignore[attr-defined]
    original = state.settings
    state.settings = dataclasses.replace(original, public_badges=True)
    yield
    state.settings = original


def test_a_read_token_in_the_query_string_opens_the_badge(client: TestClient, db: Database) -> None:
    token = db.create_token("badge-reader", ["read"])
    response = client.get("/api/badge.svg", params={"token": token}, headers={"Authorization": ""})
    assert badge_texts(response) == ["study", "0h 0m this week"]


def test_a_read_token_in_the_authorization_header_opens_the_badge(client: TestClient, db: Database) -> None:
    token = db.create_token("badge-reader", ["read"])
    response = client.get("/api/badge.svg", headers={"Authorization": f"Bearer {token}"})
    assert badge_texts(response) == ["study", "0h 0m this week"]


def test_an_unknown_token_in_the_query_string_is_a_401(client: TestClient, db: Database) -> None:
    response = client.get("/api/badge.svg", params={"token": "st_nope_nope"}, headers={"Authorization": ""})
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"


def test_public_badges_show_everyones_total_without_a_token(
    client: TestClient, db: Database, public_badges: None
) -> None:
    response = client.get("/api/badge.svg", headers={"Authorization": ""})
    assert badge_texts(response) == ["study", "0h 0m this week"]


def test_public_badges_do_not_reveal_one_users_total_without_their_token(
    client: TestClient, db: Database, freeze: Freeze, public_badges: None
) -> None:
    insert_sessions(db, [Session(datetime(2025, 1, 8, 8, tzinfo=UTC), "cka", 10, "bob")])
    freeze(WEDNESDAY)
    anonymous = client.get("/api/badge.svg", params={"user_id": "bob"}, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    alice = db.create_token("alice-reader", ["read"], user_id="alice")
    other = client.get("/api/badge.svg", params={"user_id": "bob", "token": alice}, headers={"Authorization": ""})
    assert other.status_code == 403
    bob = db.create_token("bob-reader", ["read"], user_id="bob")
    own = client.get("/api/badge.svg", params={"user_id": "bob", "token": bob}, headers={"Authorization": ""})
    assert badge_texts(own) == ["study", "0h 10m this week"]

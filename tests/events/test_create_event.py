"""POST /api/events/: what an app sees when it records a study session."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.databases import Database, count_events

VALID = {"tag": "cka", "minutes": 25, "time": "2025-01-06T08:54:00+01:00"}


def test_a_session_is_stored_and_returned_with_201(client: TestClient, db: Database) -> None:
    body = VALID | {"user_id": "u-1", "note": "etcd backup drill", "source": "pomodoro-cli"}
    response = client.post("/api/events/", json=body)
    assert response.status_code == 201
    event = response.json()
    assert event["tag"] == "cka"
    assert event["minutes"] == 25
    assert datetime.fromisoformat(event["time"]) == datetime(2025, 1, 6, 7, 54, tzinfo=UTC)
    assert (event["user_id"], event["note"], event["source"]) == ("u-1", "etcd backup drill", "pomodoro-cli")
    uuid.UUID(event["id"])
    assert datetime.fromisoformat(event["received_at"]).tzinfo is not None
    assert count_events(db) == 1


def test_tags_are_trimmed_and_keep_their_spelling(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/", json=VALID | {"tag": "  GitHub Actions "})
    assert response.json()["tag"] == "GitHub Actions"


def test_a_time_without_offset_means_utc(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/", json=VALID | {"time": "2025-01-06T08:54:00"})
    assert datetime.fromisoformat(response.json()["time"]) == datetime(2025, 1, 6, 8, 54, tzinfo=UTC)


def test_no_time_means_now(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/", json={"tag": "cka", "minutes": 5})
    stored = datetime.fromisoformat(response.json()["time"])
    assert abs(stored - datetime.now(UTC)) < timedelta(seconds=30)


def test_sending_the_same_id_again_returns_200_and_stores_nothing_new(client: TestClient, db: Database) -> None:
    body = VALID | {"id": str(uuid.uuid4())}
    first = client.post("/api/events/", json=body)
    again = client.post("/api/events/", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert count_events(db) == 1


def test_a_retry_with_an_id_but_no_time_is_the_same_session(client: TestClient, db: Database) -> None:
    body = {"id": str(uuid.uuid4()), "tag": "cka", "minutes": 25}  # "started now", sent twice
    first = client.post("/api/events/", json=body)
    again = client.post("/api/events/", json=body)
    batch = client.post("/api/events/batch", json=[body])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["time"] == first.json()["time"]
    assert batch.json()["duplicates"] == 1
    assert count_events(db) == 1


def test_an_id_without_a_time_that_holds_a_different_session_is_a_409_and_a_conflict(
    client: TestClient, db: Database
) -> None:
    event_id = str(uuid.uuid4())
    assert client.post("/api/events/", json={"id": event_id, "tag": "cka", "minutes": 25}).status_code == 201
    other = {"id": event_id, "tag": "cka", "minutes": 50}
    assert client.post("/api/events/", json=other).status_code == 409
    batch = client.post("/api/events/batch", json=[other, {"id": event_id, "tag": "cka", "minutes": 25}]).json()
    assert (batch["inserted"], batch["duplicates"], batch["conflicts"]) == (0, 1, 1)
    assert count_events(db) == 1


def test_reusing_an_id_and_time_for_a_different_session_is_a_409(client: TestClient, db: Database) -> None:
    event_id = str(uuid.uuid4())
    client.post("/api/events/", json=VALID | {"id": event_id})
    for change in ({"minutes": 26}, {"tag": "ckad"}, {"note": "changed"}):
        response = client.post("/api/events/", json=VALID | {"id": event_id} | change)
        assert response.status_code == 409
        assert response.json()["code"] == "id_conflict"
    assert count_events(db) == 1


def test_a_retry_without_an_id_is_recognised_by_its_content(client: TestClient, db: Database) -> None:
    body = VALID | {"source": "timer-app", "user_id": "ana"}
    first = client.post("/api/events/", json=body)
    again = client.post("/api/events/", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other_person = client.post("/api/events/", json=body | {"user_id": "bo"})
    assert other_person.status_code == 201
    assert count_events(db) == 2


def _future() -> str:
    return (datetime.now(UTC) + timedelta(days=2)).isoformat()


BAD_BODIES = [
    pytest.param({"minutes": 25}, "tag", id="missing tag"),
    pytest.param({"tag": "cka"}, "minutes", id="missing minutes"),
    pytest.param(VALID | {"minutes": 0}, "minutes", id="zero minutes"),
    pytest.param(VALID | {"minutes": -5}, "minutes", id="negative minutes"),
    pytest.param(VALID | {"minutes": 1441}, "minutes", id="more than a day"),
    pytest.param(VALID | {"minutes": 25.5}, "minutes", id="fractional minutes"),
    pytest.param(VALID | {"minutes": "25"}, "minutes", id="minutes as text"),
    pytest.param(VALID | {"minutes": True}, "minutes", id="minutes as boolean"),
    pytest.param(VALID | {"minutes": 10**30}, "minutes", id="huge minutes"),
    pytest.param(VALID | {"tag": ""}, "tag", id="empty tag"),
    pytest.param(VALID | {"tag": "   "}, "tag", id="blank tag"),
    pytest.param(VALID | {"tag": "x" * 65}, "tag", id="tag over 64"),
    pytest.param(VALID | {"tag": "ck\na"}, "tag", id="control character in tag"),
    pytest.param(VALID | {"tag": "ck\x00a"}, "tag", id="NUL in tag"),
    pytest.param(VALID | {"tag": 7}, "tag", id="tag as number"),
    pytest.param(VALID | {"note": "n" * 1001}, "note", id="note over 1000"),
    pytest.param(VALID | {"note": "a\x00b"}, "note", id="NUL in note"),
    pytest.param(VALID | {"note": "\ud800"}, "note", id="lone surrogate in note"),
    pytest.param(VALID | {"user_id": "u" * 129}, "user_id", id="user_id over 128"),
    pytest.param(VALID | {"source": ""}, "source", id="empty source"),
    pytest.param(VALID | {"time": "yesterday"}, "time", id="time not ISO 8601"),
    pytest.param(VALID | {"time": "2025-02-30T10:00:00Z"}, "time", id="impossible date"),
    pytest.param(VALID | {"time": "1969-12-31T23:59:59Z"}, "time", id="before 1970"),
    pytest.param(VALID | {"time": _future()}, "time", id="days in the future"),
    pytest.param(VALID | {"id": "not-a-uuid"}, "id", id="id not a UUID"),
    pytest.param(VALID | {"minute": 25}, "minute", id="unknown field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
    client: TestClient, db: Database, body: dict[str, Any], field: str
) -> None:
    # json.dumps escapes non-ASCII, so even a lone surrogate travels as valid JSON text
    response = client.post("/api/events/", content=json.dumps(body), headers={"content-type": "application/json"})
    assert response.status_code == 422
    error = response.json()
    assert error["status"] == 422
    assert error["code"] == "validation_error"
    assert error["message"].startswith(field)
    assert [detail["field"] for detail in error["details"]] == [field]
    assert count_events(db) == 0


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'"cka"', b"null", b'{"tag": "cka", "minutes": 25,}', b"\xff\xfe", b'{"tag": "\xc3\x28"}'],
    ids=["empty", "truncated", "array", "string", "null", "trailing comma", "a byte-order mark", "not UTF-8"],
)
def test_a_body_that_is_not_an_event_object_is_a_422(client: TestClient, db: Database, raw: bytes) -> None:
    response = client.post("/api/events/", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert count_events(db) == 0


def test_malformed_json_is_a_422_that_says_where(client: TestClient, db: Database) -> None:
    raw = b'{"tag": "cka", "minutes": 25,}'
    response = client.post("/api/events/", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert (
        response.json()["message"] == "body: is not valid JSON: Expecting property name enclosed in double "
        "quotes at character 29"
    )
    assert count_events(db) == 0


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_a_body_sent_as_another_content_type_is_a_422_that_asks_for_json(
    client: TestClient, db: Database, content_type: str
) -> None:
    response = client.post("/api/events/", content=json.dumps(VALID), headers={"content-type": content_type})
    assert response.status_code == 422
    assert "Content-Type: application/json" in response.json()["message"]
    assert count_events(db) == 0


@pytest.mark.parametrize("content_type", [None, "application/json; charset=utf-8", "application/vnd.api+json"])
def test_a_json_body_is_read_without_a_content_type_or_with_any_json_one(
    client: TestClient, db: Database, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.post("/api/events/", content=json.dumps(VALID), headers=headers)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert count_events(db) == 1


@pytest.mark.parametrize(
    "raw",
    [b"[" * 20_000, b'{"tag": "cka", "minutes": 1' + b"0" * 5_000 + b"}"],
    ids=["nested 20,000 deep", "an integer of 5,001 digits"],
)
def test_json_that_python_cannot_read_is_a_422(client: TestClient, db: Database, raw: bytes) -> None:
    response = client.post("/api/events/", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "is not JSON that can be read" in response.json()["message"]
    assert count_events(db) == 0

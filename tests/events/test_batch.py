"""POST /api/events/batch: many sessions at once, all or nothing, exactly once."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.events.batch import parse_events
from studytrack.events.errors import InvalidRequestError
from studytrack.web.app import create_app
from studytrack.web.errors import MAX_ERROR_DETAILS
from tests.databases import Database, count_events


def event(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "tag": "cka",
        "minutes": 1 + i % 60,
        "time": f"2025-01-06T08:{i % 60:02d}:00Z",
        "user_id": f"u{i}",
    } | extra


def test_a_json_array_is_stored_in_one_go(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/batch", json=[event(i) for i in range(500)])
    assert response.status_code == 200
    assert response.json() == {"inserted": 500, "duplicates": 0, "conflicts": 0, "not_inserted": []}
    assert count_events(db) == 500


def test_ndjson_is_accepted_and_blank_lines_are_ignored(client: TestClient, db: Database) -> None:
    body = "\n".join(json.dumps(event(i)) for i in range(3)) + "\n\n"
    response = client.post("/api/events/batch", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.json()["inserted"] == 3
    assert count_events(db) == 3


def test_one_bad_item_rejects_the_batch_naming_each_bad_index_and_field(client: TestClient, db: Database) -> None:
    items = [event(0), event(1, minutes=0), event(2), event(3, tag="")]
    response = client.post("/api/events/batch", json=items)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["[1].minutes", "[3].tag"]
    assert count_events(db) == 0


def test_bad_ndjson_lines_are_named_by_item_index(client: TestClient, db: Database) -> None:
    body = json.dumps(event(0)) + "\n{broken\n" + json.dumps(event(2, minutes="x"))
    response = client.post("/api/events/batch", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["details"]] == ["[1]", "[2].minutes"]
    assert count_events(db) == 0


@pytest.mark.parametrize("body", [b"[]", b"", b"{}", b'{"tag": "cka", "minutes": 5}'])
def test_an_empty_or_non_array_body_is_a_422(client: TestClient, db: Database, body: bytes) -> None:
    response = client.post("/api/events/batch", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert count_events(db) == 0


def test_resending_a_batch_stores_nothing_twice_and_says_so(client: TestClient, db: Database) -> None:
    items = [event(i, id=str(uuid.uuid4())) for i in range(5)] + [event(i) for i in range(5, 10)]
    client.post("/api/events/batch", json=items)
    again = client.post("/api/events/batch", json=list(reversed(items)))
    assert again.json()["inserted"] == 0
    assert again.json()["duplicates"] == 10
    assert [item["outcome"] for item in again.json()["not_inserted"]] == ["duplicate"] * 10
    assert count_events(db) == 10


def test_a_repeated_event_inside_one_batch_is_stored_once(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/batch", json=[event(1), event(2), event(1)])
    assert response.json()["inserted"] == 2
    assert response.json()["not_inserted"][0]["index"] == 2
    assert count_events(db) == 2


def test_a_conflicting_reuse_of_id_and_time_is_reported_not_written(client: TestClient, db: Database) -> None:
    event_id = str(uuid.uuid4())
    client.post("/api/events/", json=event(1, id=event_id))
    response = client.post("/api/events/batch", json=[event(1, id=event_id, minutes=59), event(2)])
    assert response.json()["conflicts"] == 1
    assert response.json()["not_inserted"] == [{"index": 0, "id": event_id, "outcome": "conflict"}]
    assert count_events(db) == 2


def test_the_same_events_sent_concurrently_are_stored_once(client: TestClient, db: Database) -> None:
    items = [event(i, id=str(uuid.uuid4())) for i in range(200)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        batches = list(pool.map(lambda _: client.post("/api/events/batch", json=items), range(6)))
        singles = list(pool.map(lambda item: client.post("/api/events/", json=item), items[:50] * 2))
    assert {response.status_code for response in batches} == {200}
    assert (
        sum(response.json()["inserted"] for response in batches)
        + sum(response.status_code == 201 for response in singles)
        == 200
    )
    assert count_events(db) == 200


def test_concurrent_single_posts_each_get_their_own_committed_event(client: TestClient, db: Database) -> None:
    items = [event(i) for i in range(100)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda item: client.post("/api/events/", json=item), items))
    assert [r.status_code for r in responses] == [201] * 100
    assert [r.json()["user_id"] for r in responses] == [item["user_id"] for item in items]
    assert count_events(db) == 100


@pytest.fixture
def small_limits_client(database_url: str, settings: Settings, db: Database) -> Iterator[TestClient]:
    limited = dataclasses.replace(settings, max_batch_events=3, max_batch_bytes=2000, auth_disabled=True)
    with TestClient(create_app(limited, database_url=database_url)) as client:
        yield client


def test_more_events_than_the_limit_is_a_422(small_limits_client: TestClient, db: Database) -> None:
    response = small_limits_client.post("/api/events/batch", json=[event(i) for i in range(4)])
    assert response.status_code == 422
    assert response.json()["code"] == "batch_too_large"
    assert count_events(db) == 0


def test_a_body_over_the_byte_limit_is_a_413(small_limits_client: TestClient, db: Database) -> None:
    response = small_limits_client.post("/api/events/batch", json=[event(1, note="n" * 1000)] * 3)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert count_events(db) == 0


@pytest.mark.parametrize("content_type", ["application/json", "application/x-ndjson"])
def test_a_batch_with_more_items_than_the_cap_is_refused_before_validation(
    small_limits_client: TestClient, db: Database, content_type: str
) -> None:
    items = [{"minutes": "not even an event"}] * 4  # invalid: validating them first would answer validation_error
    body = json.dumps(items) if content_type == "application/json" else "\n".join(json.dumps(i) for i in items)
    response = small_limits_client.post("/api/events/batch", content=body, headers={"content-type": content_type})
    assert response.status_code == 422
    assert response.json()["code"] == "batch_too_large"


def test_a_million_item_array_is_refused_without_building_its_items() -> None:
    body = b"[" + b",".join([b"{}"] * 1_000_000) + b"]"
    with pytest.raises(InvalidRequestError) as refused:
        parse_events(body, content_type="application/json", max_events=10_000)
    assert refused.value.code == "batch_too_large"


def test_the_error_answer_lists_the_first_hundred_faults_and_counts_the_rest(client: TestClient, db: Database) -> None:
    response = client.post("/api/events/batch", json=[{"tag": "cka", "minutes": 0}] * 500)
    assert response.status_code == 422
    error = response.json()
    assert len(error["details"]) == MAX_ERROR_DETAILS == 100
    assert "(and 499 more)" in error["message"]
    assert "first 100 of 500" in error["message"]
    assert count_events(db) == 0

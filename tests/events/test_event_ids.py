"""An id names one event, forever: across users and times, in batches and in concurrent single POSTs."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from tests.databases import ROLLUPS, Database, count_events, rollups_off_by

TIME = "2025-01-06T08:54:00Z"


def event(**extra: Any) -> dict[str, Any]:
    return {"tag": "cka", "minutes": 25, "time": TIME} | extra


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_same_id_and_time_twice_in_one_batch_with_other_content_is_a_conflict(
    client: TestClient, db: Database
) -> None:
    event_id = str(uuid.uuid4())
    response = client.post("/api/events/batch", json=[event(id=event_id), event(id=event_id, minutes=50)])
    assert response.json() | {"not_inserted": None} == {
        "inserted": 1, "duplicates": 0, "conflicts": 1, "not_inserted": None
    }  # fmt: skip
    assert response.json()["not_inserted"] == [{"index": 1, "id": event_id, "outcome": "conflict"}]
    assert db.execute("SELECT minutes FROM events") == [(25,)]


def test_concurrent_single_posts_of_one_id_never_answer_content_that_was_not_stored(
    client: TestClient, db: Database
) -> None:
    event_id = str(uuid.uuid4())
    bodies = [event(id=event_id, minutes=minutes) for minutes in range(1, 21)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(lambda body: client.post("/api/events/", json=body), bodies))
    stored = db.execute("SELECT minutes FROM events")
    assert len(stored) == 1
    assert sorted(r.status_code for r in responses) == [201] + [409] * 19
    assert [r.json()["minutes"] for r in responses if r.status_code == 201] == [stored[0][0]]


def test_an_id_of_another_users_event_at_another_time_is_a_409(client: TestClient, db: Database) -> None:
    event_id = str(uuid.uuid4())
    bob = db.create_token("bob-app", ["ingest", "read"], user_id="bob")
    alice = db.create_token("alice-app", ["ingest", "read"], user_id="alice")
    assert client.post("/api/events/", json=event(id=event_id), headers=bearer(bob)).status_code == 201
    theft = client.post("/api/events/", json=event(id=event_id, time="2025-02-01T10:00:00Z"), headers=bearer(alice))
    assert theft.status_code == 409
    assert theft.json()["code"] == "id_conflict"
    assert "bob" not in theft.text
    assert client.get(f"/api/events/{event_id}/", headers=bearer(bob)).json()["user_id"] == "bob"
    assert count_events(db) == 1


def test_the_same_event_with_another_owner_is_a_409_and_its_owners_retry_a_200(
    client: TestClient, db: Database
) -> None:
    event_id = str(uuid.uuid4())
    bob = db.create_token("bob-app", ["ingest"], user_id="bob")
    alice = db.create_token("alice-app", ["ingest"], user_id="alice")
    assert client.post("/api/events/", json=event(id=event_id), headers=bearer(bob)).status_code == 201
    assert client.post("/api/events/", json=event(id=event_id), headers=bearer(alice)).status_code == 409
    assert client.post("/api/events/", json=event(id=event_id), headers=bearer(bob)).status_code == 200
    batch = client.post("/api/events/batch", json=[event(id=event_id)], headers=bearer(alice))
    assert batch.json()["conflicts"] == 1


def test_an_admin_delete_removes_the_one_event_and_frees_its_id(client: TestClient, db: Database) -> None:
    event_id = str(uuid.uuid4())
    client.post("/api/events/", json=event(id=event_id))
    assert client.post("/api/events/", json=event(id=event_id, time="2025-03-01T00:00:00Z")).status_code == 409
    assert client.delete(f"/api/events/{event_id}/").status_code == 204
    assert count_events(db) == 0
    assert rollups_off_by(db) == dict.fromkeys(ROLLUPS, 0)
    assert client.post("/api/events/", json=event(id=event_id, time="2025-03-01T00:00:00Z")).status_code == 201


def test_concurrent_batches_of_the_same_new_events_in_opposite_orders_all_succeed(
    client: TestClient, db: Database
) -> None:
    for _ in range(5):
        db.reset()
        items = [event(id=str(uuid.uuid4()), time=f"2025-01-06T{i // 60:02d}:{i % 60:02d}:00Z") for i in range(300)]
        orders = [items, items[::-1]] * 2
        with ThreadPoolExecutor(max_workers=4) as pool:
            responses = list(pool.map(lambda batch: client.post("/api/events/batch", json=batch), orders))
        assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
        assert sum(r.json()["inserted"] for r in responses) == 300
        assert count_events(db) == 300
        assert rollups_off_by(db) == dict.fromkeys(ROLLUPS, 0)

"""GET /api/events/{id}/: one stored session, or a 404 that says so."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.databases import Database


def test_a_stored_session_can_be_read_back_by_id(client: TestClient, db: Database) -> None:
    created = client.post("/api/events/", json={"tag": "cka", "minutes": 25}).json()
    response = client.get(f"/api/events/{created['id']}/")
    assert response.status_code == 200
    assert response.json() == created


def test_an_unknown_id_is_a_404_in_the_error_shape(client: TestClient, db: Database) -> None:
    missing = uuid.uuid4()
    response = client.get(f"/api/events/{missing}/")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "code": "event_not_found",
        "message": f"no study session with id {missing}",
        "details": [],
    }


def test_an_id_that_is_not_a_uuid_is_a_422(client: TestClient, db: Database) -> None:
    response = client.get("/api/events/not-a-uuid/")
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "event_id"

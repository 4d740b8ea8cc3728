"""Routes answer with or without their trailing slash: the same answer, never an empty redirect."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.databases import Database


def other_spelling(path: str) -> str:
    return path.removesuffix("/") if path.endswith("/") else path + "/"


def test_every_read_answers_the_same_with_or_without_the_trailing_slash(client: TestClient) -> None:
    created = client.post("/api/events/", json={"tag": "cka", "minutes": 25, "time": "2025-01-06T08:00:00Z"})
    paths = [
        f"/api/events/{created.json()['id']}/",
        "/api/events/?start=2025-01-01&end=2025-02-01",
        "/api/sessions/",
        "/api/stats/",
        "/api/badge.svg?tags=cka",
        "/sessions",
        "/stats",
        "/health",
        "/healthz",
    ]
    for path in paths:
        route, _, query = path.partition("?")
        documented = client.get(path, follow_redirects=False)
        other = client.get(f"{other_spelling(route)}?{query}", follow_redirects=False)
        assert (other.status_code, other.content) == (documented.status_code, documented.content), path
        assert documented.status_code == 200, path


def test_a_post_without_the_trailing_slash_is_stored_not_redirected(client: TestClient, db: Database) -> None:
    event = {"tag": "cka", "minutes": 25, "time": "2025-01-06T08:00:00Z"}
    assert client.post("/api/events", json=event, follow_redirects=False).status_code == 201
    assert client.post("/api/events/batch/", json=[event | {"minutes": 5}], follow_redirects=False).status_code == 200
    assert client.get("/api/stats").json()["total_sessions"] == 2


def test_the_documented_spelling_stays_the_only_one_in_the_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/events/{event_id}/" in paths
    assert "/api/events/{event_id}" not in paths

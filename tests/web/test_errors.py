"""Every 4xx and 5xx has one JSON shape with a message a person can act on."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_an_unknown_route_is_a_404_that_points_to_the_docs(app_client: TestClient) -> None:
    response = app_client.get("/api/nope")
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "not_found"
    assert "/docs" in body["message"]
    assert body["details"] == []


def test_a_wrong_method_is_a_405_in_the_same_shape(app_client: TestClient) -> None:
    response = app_client.delete("/api/stats/")
    assert response.status_code == 405
    assert set(response.json()) == {"status", "code", "message", "details"}


def test_openapi_documents_the_api_with_examples(app_client: TestClient) -> None:
    schema = app_client.get("/openapi.json").json()
    assert {"/api/events/", "/api/events/{event_id}/", "/api/sessions/", "/api/stats/", "/healthz"} <= set(
        schema["paths"]
    )
    assert schema["components"]["schemas"]["EventCreate"]["examples"]
    assert app_client.get("/docs").status_code == 200

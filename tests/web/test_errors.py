"""Every 4xx and 5xx has one JSON shape with a message a person can act on."""

from __future__ import annotations

import dataclasses
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from studytrack.config import load_settings
from studytrack.events import ingest
from studytrack.web.errors import install_error_handlers
from tests import REPO
from tests.databases import Database


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


def _failing_app(exc: Exception) -> TestClient:
    app = FastAPI()
    app.state.settings = dataclasses.replace(load_settings(REPO / ".env"), db_timeout_seconds=2.0)
    install_error_handlers(app)

    @app.get("/fail")
    async def fail() -> None:
        raise exc

    return TestClient(app)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        pytest.param(psycopg.errors.DeadlockDetected("deadlock detected"), "database_contention", id="deadlock"),
        pytest.param(psycopg.errors.SerializationFailure("could not serialize"), "database_contention", id="serial"),
        pytest.param(psycopg.errors.QueryCanceled("statement timeout"), "database_timeout", id="timeout"),
    ],
)
def test_a_database_that_answers_is_never_called_unreachable(exc: Exception, code: str) -> None:
    response = _failing_app(exc).get("/fail")
    assert response.status_code == 503
    assert response.json()["code"] == code
    assert "unreachable" not in response.json()["message"]
    assert "Retry-After" in response.headers


def test_a_write_that_hits_a_deadlock_is_retried_and_succeeds(
    client: TestClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest.write_events
    failures = [psycopg.errors.DeadlockDetected("deadlock detected")]

    async def deadlocking_once(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real(*args, **kwargs)

    monkeypatch.setattr(ingest, "write_events", deadlocking_once)
    response = client.post("/api/events/batch", json=[{"tag": "cka", "minutes": 5, "time": "2025-01-06T08:00:00Z"}])
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    assert failures == []

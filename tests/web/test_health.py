"""GET /healthz: 200 with the database mode, or a fast 503 when the database is unreachable."""

from __future__ import annotations

import dataclasses
import time

from fastapi.testclient import TestClient

from studytrack import __version__
from studytrack.config import Settings
from studytrack.web.app import create_app

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens


def test_health_reports_the_database_and_its_mode(app_client: TestClient, backend: str) -> None:
    response = app_client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["version"]) == ("ok", "ok", __version__)
    assert body["mode"] == backend
    if backend == "timescaledb":
        assert body["timescaledb"].startswith("2.")
    else:
        assert body["timescaledb"] is None


def test_health_is_a_fast_503_when_the_database_is_down(settings: Settings) -> None:
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0, auth_disabled=True)
    with TestClient(create_app(fast, database_url=UNREACHABLE)) as client:
        started = time.monotonic()
        response = client.get("/healthz")
        assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["version"]) == ("unavailable", "unreachable", __version__)
    assert body["code"] == "database_unavailable"


def test_api_requests_get_a_503_in_the_error_shape_when_the_database_is_down(settings: Settings) -> None:
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0, auth_disabled=True)
    with TestClient(create_app(fast, database_url=UNREACHABLE)) as client:
        post = client.post("/api/events/", json={"tag": "cka", "minutes": 25})
        read = client.get("/api/events/")
    for response in (post, read):
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "5"

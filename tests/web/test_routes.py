"""Every route of every router answers on each app built, with that app's dependency overrides only."""

from __future__ import annotations

import dataclasses
from typing import get_args

from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.web.app import create_app
from studytrack.web.auth import ReadAccess
from studytrack.web.errors import ApiError

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens


async def _refuse() -> None:
    raise ApiError(403, "overridden", "refused by this app's override")


def test_dependency_overrides_apply_to_their_own_app_only(settings: Settings) -> None:
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0)
    overridden, plain = create_app(fast, database_url=UNREACHABLE), create_app(fast, database_url=UNREACHABLE)
    overridden.dependency_overrides[get_args(ReadAccess)[1].dependency] = _refuse
    assert TestClient(overridden).get("/api/stats/").json()["code"] == "overridden"
    assert TestClient(overridden).get("/api/stats").json()["code"] == "overridden"  # the other spelling too
    assert TestClient(plain).get("/api/stats/").json()["code"] == "missing_token"


def test_the_docs_and_static_files_answer_after_the_api_routes(settings: Settings) -> None:
    client = TestClient(create_app(settings, database_url=UNREACHABLE))
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/docs").status_code == 200
    assert client.get("/dashboard").status_code == 200
    assert client.get("/static/dashboard.js").status_code == 200

"""Fixtures: real database servers, never mocks.

* `server_url`: a plain PostgreSQL (the embedded wheel, or TEST_DATABASE_URL), for tests that need their own
  databases or several connections.
* `timescaledb_server_url`: a native TimescaleDB 2.29 (the same wheel's server with the extension preloaded;
  `studytrack timescaledb install` put it there), or TEST_TIMESCALEDB_URL.
* `backend`: every API test runs twice, on plain PostgreSQL and on TimescaleDB, each on its own server.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from studytrack.config import Settings, load_settings
from studytrack.database.embedded import restart_embedded_database, start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.timescaledb_build import is_installed as timescaledb_installed
from studytrack.web.app import create_app
from tests import REPO
from tests.databases import BACKENDS, Database, backend_mode, backend_server, create_database

FAST_LANE = os.environ.get("STUDYTRACK_FAST_LANE") == "1"  # set by `tests/run.sh --fast`


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The fast lane runs on plain PostgreSQL only; the tests it leaves out are reported as deselected."""
    if not FAST_LANE:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_timescaledb = "timescaledb_server_url" in getattr(item, "fixturenames", ()) or (
            callspec is not None and callspec.params.get("backend") == "timescaledb"
        )
        (drop if on_timescaledb else keep).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


# CI runs the same examples every time, so a red run can be replayed.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A plain PostgreSQL server: TEST_DATABASE_URL, or an embedded one started for this test run."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="studytrack-tests-") as home:
        server, url = start_embedded_database(Path(home))
        try:
            yield url
        finally:
            stop_embedded_database(server)


@pytest.fixture(scope="session")
def timescaledb_server_url() -> Iterator[str]:
    """A native TimescaleDB server: TEST_TIMESCALEDB_URL, or an embedded one with the extension preloaded."""
    if url := os.environ.get("TEST_TIMESCALEDB_URL"):
        yield url
        return
    if not timescaledb_installed():
        pytest.fail(
            "TimescaleDB is not in the embedded PostgreSQL: run `studytrack timescaledb install` (tests/run.sh does)"
        )
    with tempfile.TemporaryDirectory(prefix="studytrack-tests-timescaledb-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=True)
        # Each test database runs a TimescaleDB scheduler of its own: room for many at once.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET max_worker_processes = 128")
            conn.execute("ALTER SYSTEM SET timescaledb.max_background_workers = 112")
        restart_embedded_database(server)
        try:
            yield url
        finally:
            stop_embedded_database(server)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return dataclasses.replace(load_settings(REPO / ".env"), database_url=None, db_timeout_seconds=3.0)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def backend_settings(backend: str, settings: Settings) -> Settings:
    return backend_mode(backend, settings)


@pytest.fixture(scope="session")
def database_url(backend: str, backend_settings: Settings, request: pytest.FixtureRequest) -> str:
    """A fresh database on the backend, migrated by the same code path as `studytrack migrate`."""
    url = create_database(backend_server(backend, request), "studytrack_test")
    run_migrations(url, backend_settings)
    return url


@pytest.fixture(scope="session")
def app_client(database_url: str, backend_settings: Settings) -> Iterator[TestClient]:
    """The app, calling with an admin token unless a test sends its own Authorization header."""
    with TestClient(create_app(backend_settings, database_url=database_url)) as client:
        client.headers["Authorization"] = f"Bearer {Database(client).create_token('test-admin', ['admin'])}"
        yield client


@pytest.fixture(scope="session")
def database(app_client: TestClient) -> Database:
    return Database(app_client)


@pytest.fixture
def db(database: Database) -> Database:
    """The test database, starting from an empty events table."""
    database.reset()
    return database


@pytest.fixture
def client(app_client: TestClient, db: Database) -> TestClient:
    """The API over a real connection pool, on an empty events table."""
    return app_client

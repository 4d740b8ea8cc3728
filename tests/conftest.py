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
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from psycopg.rows import tuple_row

from studytrack.auth.tokens import create_token
from studytrack.config import Settings, load_settings
from studytrack.database.embedded import restart_embedded_database, start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.timescaledb_build import is_installed as timescaledb_installed
from studytrack.events.ingest import NewEvent
from studytrack.web.app import create_app

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("postgresql", "timescaledb")
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


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


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


def backend_server(backend: str, request: pytest.FixtureRequest) -> str:
    """The server URL of a backend (`postgresql` or `timescaledb`)."""
    fixture = "timescaledb_server_url" if backend == "timescaledb" else "server_url"
    return str(request.getfixturevalue(fixture))


def backend_mode(backend: str, settings: Settings) -> Settings:
    """TIMESCALEDB=required on the TimescaleDB server, off on the plain one."""
    return dataclasses.replace(settings, timescaledb="required" if backend == "timescaledb" else "off")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return dataclasses.replace(load_settings(REPO / ".env"), database_url=None, db_timeout_seconds=3.0)


def create_database(server_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


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


class Database:
    """SQL for tests through the app's own connection pool (tuples, autocommit per call)."""

    def __init__(self, client: TestClient) -> None:
        self._client = client

    def _call(self, query: str, params: Any, many: bool) -> list[tuple[Any, ...]]:
        pool = self._client.app.state.pool  # type: ignore[attr-defined]

        async def run() -> list[tuple[Any, ...]]:
            async with pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                if many:
                    await cur.executemany(query, params)
                    return []
                await cur.execute(query, params, prepare=False)
                return await cur.fetchall() if cur.description else []

        portal = self._client.portal
        assert portal is not None, "the TestClient must be inside its `with` block"
        return portal.call(run)

    def execute(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self._call(query, params, many=False)

    def executemany(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        self._call(query, rows, many=True)

    def write(self, events: Sequence[NewEvent]) -> None:
        """Store events the way the API does (so the rollup stays exact)."""
        writer = self._client.app.state.writer  # type: ignore[attr-defined]
        portal = self._client.portal
        assert portal is not None
        portal.call(writer.write, events)

    def create_token(self, name: str, scopes: list[str], user_id: str | None = None) -> str:
        pool = self._client.app.state.pool  # type: ignore[attr-defined]

        async def run() -> str:
            async with pool.connection() as conn:
                return await create_token(conn, name=name, scopes=scopes, user_id=user_id)

        portal = self._client.portal
        assert portal is not None
        return portal.call(run)

    def reset(self) -> None:
        """Empty the events table, its rollup and the tag spellings; drop tests' tokens."""
        self.execute("DELETE FROM api_tokens WHERE name <> 'test-admin'")
        self.execute("TRUNCATE events, events_15m, event_ids, tag_spellings")


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


def count_events(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM events")[0][0])

"""Fixtures: a real PostgreSQL (the embedded wheel, or TEST_DATABASE_URL), migrated once, emptied per test."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from studytrack.config import Settings, load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.web.app import create_app

REPO = Path(__file__).resolve().parent.parent

# CI runs the same examples every time, so a red run can be replayed.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A PostgreSQL server: TEST_DATABASE_URL, or an embedded one started for this test run."""
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
def settings() -> Settings:
    return dataclasses.replace(load_settings(REPO / ".env"), database_url=None, db_timeout_seconds=3.0)


def create_database(server_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


@pytest.fixture(scope="session")
def database_url(server_url: str, settings: Settings) -> str:
    """A fresh database for this run, migrated by the same code path as `studytrack migrate`."""
    url = create_database(server_url, "studytrack_test")
    run_migrations(url, settings)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A direct connection to the test database, starting from an empty events table."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE events")
        yield conn


@pytest.fixture(scope="session")
def app_client(database_url: str, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, database_url=database_url)) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient, db: psycopg.Connection[Any]) -> TestClient:
    """The API over a real connection pool, on an empty events table."""
    return app_client


def count_events(db: psycopg.Connection[Any]) -> int:
    row = db.execute("SELECT count(*) FROM events").fetchone()
    assert row is not None
    return int(row[0])

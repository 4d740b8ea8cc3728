"""Fault-test fixtures: a fresh, migrated database on each backend and an admin token made by the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests.databases import backend_mode, backend_server, create_database
from tests.faults.harness import create_admin_token


@dataclasses.dataclass(frozen=True)
class Target:
    database_url: str
    token: str


@pytest.fixture
def target(backend: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Target:
    """A fresh database on the backend's server, migrated, with an admin token made by `studytrack token create`."""
    url = create_database(backend_server(backend, request), "faults")
    run_migrations(url, backend_mode(backend, settings))
    return Target(url, create_admin_token(url, f"fault-{request.node.name[:40]}", tmp_path))

"""Fault-test fixtures: a fresh, migrated plain-PostgreSQL database and an admin token made by the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests.conftest import create_database
from tests.faults.harness import create_admin_token


@dataclasses.dataclass(frozen=True)
class Target:
    database_url: str
    token: str


@pytest.fixture
def target(server_url: str, settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Target:
    """A fresh database on the test server, migrated, with an admin token created by `studytrack token create`."""
    url = create_database(server_url, "faults")
    run_migrations(url, dataclasses.replace(settings, timescaledb="off"))
    return Target(url, create_admin_token(url, f"fault-{request.node.name[:40]}", tmp_path))

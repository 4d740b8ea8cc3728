"""Read-replica fixtures: per backend, a primary with a hot standby of its own, and the app reading from it."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from studytrack.web.app import create_app
from tests.databases import Database
from tests.replicas.cluster import Cluster, replicated_cluster, wait_replayed

ROUTING_MAX_LAG_SECONDS = 60.0  # the routing tests pause replay on purpose: the replica must stay in use


@pytest.fixture(scope="session")
def cluster(backend: str) -> Iterator[Cluster]:
    with replicated_cluster(timescaledb=backend == "timescaledb") as replicated:
        yield replicated


@pytest.fixture(scope="session")
def replicated_database(cluster: Cluster, backend_settings: Settings) -> str:
    """A migrated database on the primary, replayed on the standby; its name."""
    name = f"replicas_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.primary.get_uri(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    run_migrations(cluster.primary_url(name), backend_settings)
    wait_replayed(cluster)
    return name


def replica_settings(settings: Settings, cluster: Cluster, database: str, *, max_lag: float) -> Settings:
    return dataclasses.replace(
        settings, database_replica_urls=(cluster.standby_url(database),), replica_max_lag_seconds=max_lag
    )


def replicated_app(settings: Settings, cluster: Cluster, database: str, *, max_lag: float) -> TestClient:
    """The app on the primary with the standby as its replica; enter it with `with`."""
    configured = replica_settings(settings, cluster, database, max_lag=max_lag)
    return TestClient(create_app(configured, database_url=cluster.primary_url(database)))


@pytest.fixture(scope="session")
def replicated_client(cluster: Cluster, replicated_database: str, backend_settings: Settings) -> Iterator[TestClient]:
    app = replicated_app(backend_settings, cluster, replicated_database, max_lag=ROUTING_MAX_LAG_SECONDS)
    with app as client:
        client.headers["Authorization"] = f"Bearer {Database(client).create_token('test-admin', ['admin'])}"
        yield client


@contextmanager
def lag_bound(client: TestClient, seconds: float) -> Iterator[None]:
    """The shared app's replica monitor with a tighter lag bound for a while.

    Not a second app: the replica gauges in /metrics are per process, and two monitors there would overwrite
    each other's `replica-1`."""
    replicas = client.app.state.replicas  # type: ignore[attr-defined]
    kept, replicas.max_lag_seconds = replicas.max_lag_seconds, seconds
    try:
        yield
    finally:
        replicas.max_lag_seconds = kept


@pytest.fixture
def replicated(replicated_client: TestClient, cluster: Cluster, replicated_database: str) -> TestClient:
    """The replicated app on empty tables, the standby caught up."""
    Database(replicated_client).reset()
    wait_replayed(cluster)
    return replicated_client

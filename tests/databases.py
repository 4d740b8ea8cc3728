"""Real test databases: what the fixtures and the tests share (the fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import tuple_row

from studytrack.auth.tokens import create_token
from studytrack.config import Settings
from studytrack.events.ingest import NewEvent

BACKENDS = ("postgresql", "timescaledb")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def backend_server(backend: str, request: pytest.FixtureRequest) -> str:
    """The server URL of a backend (`postgresql` or `timescaledb`)."""
    fixture = "timescaledb_server_url" if backend == "timescaledb" else "server_url"
    return str(request.getfixturevalue(fixture))


def backend_mode(backend: str, settings: Settings) -> Settings:
    """TIMESCALEDB=required on the TimescaleDB server, off on the plain one."""
    return dataclasses.replace(settings, timescaledb="required" if backend == "timescaledb" else "off")


def create_database(server_url: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(server_url, name)


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
        self.execute("TRUNCATE events, events_15m, events_1h, events_6h, events_1d, event_ids, tag_spellings")


ROLLUPS = {"events_15m": "15 minutes", "events_1h": "1 hour", "events_6h": "6 hours", "events_1d": "1 day"}


def rollups_off_by(db: Database) -> dict[str, int]:
    """Per rollup table, how many of its (tag, bucket) rows disagree with the raw rows' sums (emptied rows,
    left by deletes with a zero count, agree)."""
    off = {}
    for table, grain in ROLLUPS.items():
        raw = (
            f"SELECT tag, date_bin(INTERVAL '{grain}', time, TIMESTAMPTZ '2000-01-03Z') AS bucket,"
            " sum(minutes) AS minutes, count(*) AS count FROM events GROUP BY 1, 2"
        )
        kept = f"SELECT tag, bucket, minutes, count FROM {table} WHERE count <> 0"
        rows = db.execute(f"SELECT count(*) FROM (({kept} EXCEPT {raw}) UNION ALL ({raw} EXCEPT {kept})) AS d")
        off[table] = int(rows[0][0])
    return off


def count_events(db: Database) -> int:
    return int(db.execute("SELECT count(*) FROM events")[0][0])

"""Which database we talk to: TimescaleDB (hypertable, time_bucket) or plain PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from studytrack.database import catalog


@dataclass(frozen=True)
class DatabaseMode:
    server_version: str
    timescaledb_version: str | None
    rollup: bool = False  # the rollup tables events_15m, events_1h, events_6h and events_1d exist

    @property
    def name(self) -> str:
        return "timescaledb" if self.timescaledb_version else "postgresql"

    @property
    def is_timescaledb(self) -> bool:
        return self.timescaledb_version is not None


async def detect_mode(conn: AsyncConnection[Any]) -> DatabaseMode:
    """TimescaleDB mode when the extension is installed and `events` is a hypertable."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(catalog.SERVER_MODE)
        row = await cur.fetchone()
        assert row is not None
        version, hypertable, rollup = row["timescaledb"], False, bool(row["rollup"])
        if version is not None and row["has_catalog"]:
            await cur.execute(catalog.EVENTS_IS_HYPERTABLE)
            found = await cur.fetchone()
            assert found is not None
            hypertable = bool(found["hypertable"])
        if not hypertable:
            version = None  # no extension, or our table is a plain one: plain mode
    return DatabaseMode(server_version=row["server_version"], timescaledb_version=version, rollup=rollup)

"""Which database we talk to: TimescaleDB (hypertable, time_bucket) or plain PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

_MODE_SQL = """
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb,
       to_regclass('timescaledb_information.hypertables') IS NOT NULL AS has_catalog
"""
_IS_HYPERTABLE_SQL = """
SELECT 1 FROM timescaledb_information.hypertables
WHERE hypertable_schema = current_schema() AND hypertable_name = 'events'
"""


@dataclass(frozen=True)
class DatabaseMode:
    server_version: str
    timescaledb_version: str | None

    @property
    def name(self) -> str:
        return "timescaledb" if self.timescaledb_version else "postgresql"

    @property
    def is_timescaledb(self) -> bool:
        return self.timescaledb_version is not None


async def detect_mode(conn: AsyncConnection[Any]) -> DatabaseMode:
    """TimescaleDB mode when the extension is installed and `events` is a hypertable."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_MODE_SQL)
        row = await cur.fetchone()
        assert row is not None
        version = row["timescaledb"]
        if version is not None and row["has_catalog"]:
            await cur.execute(_IS_HYPERTABLE_SQL)
            if await cur.fetchone() is None:
                version = None  # extension present but our table is plain: plain mode
    return DatabaseMode(server_version=row["server_version"], timescaledb_version=version)

"""What the database holds and how TimescaleDB is doing: for /healthz and `studytrack db status`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel

_CHUNKS = """
    SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed_chunks
    FROM timescaledb_information.chunks WHERE hypertable_name = 'events'
"""
_COMPRESSION = """
    SELECT sum(before_compression_total_bytes)::float8
           / nullif(sum(after_compression_total_bytes), 0) AS ratio
    FROM hypertable_compression_stats('events')
"""
_EVENTS = "SELECT count(*) AS events, min(time) AS first_event, max(time) AS last_event FROM events"


class TimescaleStatus(BaseModel):
    chunks: int
    compressed_chunks: int
    compression_ratio: float | None


class EventTotals(BaseModel):
    events: int
    first_event: datetime | None
    last_event: datetime | None


async def _one(conn: AsyncConnection[Any], query: str) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query)
        row = await cur.fetchone()
    return row or {}


async def timescale_status(conn: AsyncConnection[Any]) -> TimescaleStatus:
    chunks = await _one(conn, _CHUNKS)
    compression = await _one(conn, _COMPRESSION)
    ratio = compression.get("ratio")
    return TimescaleStatus(
        chunks=chunks["chunks"],
        compressed_chunks=chunks["compressed_chunks"],
        compression_ratio=round(ratio, 2) if ratio else None,
    )


async def event_totals(conn: AsyncConnection[Any]) -> EventTotals:
    return EventTotals.model_validate(await _one(conn, _EVENTS))

"""What the database holds and how TimescaleDB is doing: for /healthz and `studytrack db status`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import BaseModel

from studytrack.database import catalog


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
    chunks = await _one(conn, catalog.CHUNKS)
    compression = await _one(conn, catalog.COMPRESSION_RATIO)
    ratio = compression.get("ratio")
    return TimescaleStatus(
        chunks=chunks["chunks"],
        compressed_chunks=chunks["compressed_chunks"],
        compression_ratio=round(ratio, 2) if ratio else None,
    )


async def event_totals(conn: AsyncConnection[Any]) -> EventTotals:
    return EventTotals.model_validate(await _one(conn, catalog.EVENT_TOTALS))

"""The async psycopg connection pool every request borrows from."""

from __future__ import annotations

import math
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from studytrack.config import Settings

DictConnection = AsyncConnection[dict[str, Any]]


async def _configure(conn: DictConnection) -> None:
    # Sessions compute in UTC; the caller's timezone is always passed explicitly.
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


def make_pool(url: str, settings: Settings) -> AsyncConnectionPool[DictConnection]:
    """A closed pool; open it with `await pool.open()` inside the event loop that uses it."""
    return AsyncConnectionPool(
        url,
        connection_class=DictConnection,
        kwargs={
            "row_factory": dict_row,
            "connect_timeout": max(1, math.ceil(settings.db_timeout_seconds)),
            "application_name": "studytrack",
        },
        min_size=1,
        max_size=settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        configure=_configure,
        # A connection broken by a database restart is replaced on checkout, not handed out.
        check=AsyncConnectionPool.check_connection,
        open=False,
    )

"""The async psycopg connection pool every request borrows from.

Connections are in autocommit mode: every statement the service sends is complete on its own (an
insert and its rollup upsert are one statement), so a request costs one round trip instead of
BEGIN + statement + COMMIT.
"""

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


def make_pool(url: str, settings: Settings) -> AsyncConnectionPool[DictConnection]:
    """A closed pool; open it with `await pool.open()` inside the event loop that uses it."""
    return AsyncConnectionPool(
        url,
        connection_class=DictConnection,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": max(1, math.ceil(settings.db_timeout_seconds)),
            "application_name": "studytrack",
        },
        min_size=1,
        max_size=settings.db_pool_size,
        timeout=settings.db_timeout_seconds,
        configure=_configure,
        # A connection broken by a database restart is replaced on checkout, not handed out. Checking
        # only connections idle for a second saved a round trip per write group but, measured with
        # tests/faults/test_database_outage.py, delayed recovery after an outage from ~0.1 s to ~7 s
        # in half the runs (the pool's reconnect backoff): checked on every checkout.
        check=AsyncConnectionPool.check_connection,
        open=False,
    )

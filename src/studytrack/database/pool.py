"""The async psycopg connection pool every request borrows from.

Connections are in autocommit mode: every statement the service sends is complete on its own (an
insert and its rollup upsert are one statement), so a request costs one round trip instead of
BEGIN + statement + COMMIT.
"""

from __future__ import annotations

import math
from time import monotonic
from typing import Any
from weakref import WeakKeyDictionary

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from studytrack.config import Settings

DictConnection = AsyncConnection[dict[str, Any]]
TRUSTED_FOR_SECONDS = 1.0

_returned_at: WeakKeyDictionary[AsyncConnection[Any], float] = WeakKeyDictionary()


async def _configure(conn: DictConnection) -> None:
    # Sessions compute in UTC; the caller's timezone is always passed explicitly.
    await conn.execute("SET TIME ZONE 'UTC'")


async def _note_return(conn: DictConnection) -> None:
    _returned_at[conn] = monotonic()


async def _check_unless_recent(conn: DictConnection) -> None:
    """Check a connection before handing it out, unless a request finished with it under a second ago.

    A connection broken by a database restart is then replaced on checkout instead of failing a request,
    without a round trip per request under load (a connection that fails mid-request is discarded).
    """
    if monotonic() - _returned_at.get(conn, -math.inf) >= TRUSTED_FOR_SECONDS:
        await AsyncConnectionPool.check_connection(conn)


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
        check=_check_unless_recent,
        reset=_note_return,
        open=False,
    )

"""Dependencies as types: routes declare what they need, FastAPI provides it.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency in
a thread pool, a thread hop per request that the hot ingest path cannot afford.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, FastAPI, Header, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from studytrack.config import Settings
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.database.replicas import ReplicaSet
from studytrack.events.ingest import EventWriter, GroupCommitter
from studytrack.web.replicametrics import count_read

# A replica that cannot hand out a connection this fast is skipped: the read goes to the primary at once.
REPLICA_CHECKOUT_SECONDS = 1.0


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def primary_or_stand_in(app: FastAPI) -> AsyncConnectionPool[Any]:
    """The primary's pool; while the replica monitor finds the primary unreachable, a serving replica's.

    For the reads the primary answers when it can (token checks, the database mode): a token revoked just
    before the primary went down may then pass, but nothing can be revoked while it is down."""
    replicas: ReplicaSet | None = app.state.replicas
    stand_in = replicas.stand_in() if replicas is not None else None
    pool: AsyncConnectionPool[Any] = app.state.pool if stand_in is None else stand_in.pool
    return pool


async def current_mode(app: FastAPI) -> DatabaseMode:
    """The database mode, detected once per process (the database may come up after the service)."""
    mode: DatabaseMode | None = app.state.mode
    if mode is None:
        async with primary_or_stand_in(app).connection() as conn:
            mode = app.state.mode = await detect_mode(conn)
    return mode


async def _read_connection(app: FastAPI, stack: AsyncExitStack, *, primary: bool) -> AsyncConnection[Any]:
    replicas: ReplicaSet | None = app.state.replicas
    if replicas is not None and not primary and (replica := replicas.pick()) is not None:
        try:
            conn = await stack.enter_async_context(replica.pool.connection(timeout=REPLICA_CHECKOUT_SECONDS))
        except (PoolTimeout, psycopg.OperationalError):
            replicas.set_unreachable(replica)
        else:
            count_read(replica.name)
            return conn
    count_read("primary")
    conn = await stack.enter_async_context(app.state.pool.connection())
    return conn


async def get_read_connection(
    request: Request,
    x_read_from: Annotated[
        Literal["primary"] | None,
        Header(
            description="`primary`: read from the primary database, never a replica, to see your own writes "
            "at once (docs/scaling.md). Without it a read may come from a replica a moment behind."
        ),
    ] = None,
) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection for a read: a fresh replica's when there is one (docs/scaling.md), else the primary's."""
    async with AsyncExitStack() as stack:
        yield await _read_connection(request.app, stack, primary=x_read_from == "primary")


async def get_mode(request: Request) -> DatabaseMode:
    return await current_mode(request.app)


async def get_writer(request: Request) -> EventWriter:
    writer: EventWriter = request.app.state.writer
    return writer


async def get_committer(request: Request) -> GroupCommitter:
    committer: GroupCommitter = request.app.state.committer
    return committer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ReadConnectionDep = Annotated[AsyncConnection[Any], Depends(get_read_connection)]
ModeDep = Annotated[DatabaseMode, Depends(get_mode)]
CommitterDep = Annotated[GroupCommitter, Depends(get_committer)]
WriterDep = Annotated[EventWriter, Depends(get_writer)]

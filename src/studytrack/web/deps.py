"""Dependencies as types: routes declare what they need, FastAPI provides it.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency in
a thread pool, a thread hop per request that the hot ingest path cannot afford.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
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
PRIMARY = "primary"
_returning: set[asyncio.Future[None]] = set()  # connections on their way back to a pool, referenced until done


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


async def _replica_connection(pool: AsyncConnectionPool[Any], stack: AsyncExitStack) -> AsyncConnection[Any] | None:
    """A connection from a replica's pool within REPLICA_CHECKOUT_SECONDS, or None (down, hung or saturated).

    The pool's own timeout does not cover its check of the connection, which a hung server never answers:
    past the time the checkout is abandoned, and a connection it still gets goes back to the pool."""
    checkout = asyncio.ensure_future(pool.getconn(REPLICA_CHECKOUT_SECONDS))
    try:
        done, _ = await asyncio.wait({checkout}, timeout=REPLICA_CHECKOUT_SECONDS)
    except BaseException:  # the request itself was cancelled (deadline, shutdown): lose no connection
        _abandon(pool, checkout)
        raise
    if checkout not in done:
        _abandon(pool, checkout)
        return None
    try:
        conn: AsyncConnection[Any] = checkout.result()
    except (PoolTimeout, psycopg.OperationalError):
        return None
    stack.push_async_callback(pool.putconn, conn)
    return conn


def _abandon(pool: AsyncConnectionPool[Any], checkout: asyncio.Future[Any]) -> None:
    checkout.cancel()
    checkout.add_done_callback(lambda task: _give_back(pool, task))


def _give_back(pool: AsyncConnectionPool[Any], checkout: asyncio.Future[Any]) -> None:
    if not checkout.cancelled() and checkout.exception() is None:
        _returning.add(task := asyncio.ensure_future(pool.putconn(checkout.result())))
        task.add_done_callback(_returning.discard)


async def _read_connection(app: FastAPI, stack: AsyncExitStack, *, primary: bool) -> tuple[AsyncConnection[Any], str]:
    """A connection for a read and where it goes: a replica's name, or `primary`."""
    replicas: ReplicaSet | None = app.state.replicas
    if replicas is not None and not primary and (replica := replicas.pick()) is not None:
        if (conn := await _replica_connection(replica.pool, stack)) is not None:
            count_read(replica.name)
            return conn, replica.name
        replicas.set_unreachable(replica)
    return await stack.enter_async_context(primary_connection(app)), PRIMARY


@asynccontextmanager
async def primary_connection(app: FastAPI) -> AsyncIterator[AsyncConnection[Any]]:
    """A read on the primary, counted as one."""
    count_read(PRIMARY)
    async with app.state.pool.connection() as conn:
        yield conn


def read_on_replica(request: Request) -> bool:
    """Whether this request's read connection is a replica's (a moment behind the primary)."""
    return getattr(request.state, "read_from", PRIMARY) != PRIMARY


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
        conn, request.state.read_from = await _read_connection(request.app, stack, primary=x_read_from == PRIMARY)
        yield conn


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

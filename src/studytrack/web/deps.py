"""Dependencies as types: routes declare what they need, FastAPI provides it.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def` dependency in
a thread pool, a thread hop per request that the hot ingest path cannot afford.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from studytrack.config import Settings
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.events.ingest import EventWriter, GroupCommitter


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    return pool


async def get_connection(
    pool: Annotated[AsyncConnectionPool[Any], Depends(get_pool)],
) -> AsyncIterator[AsyncConnection[Any]]:
    async with pool.connection() as conn:
        yield conn


async def current_mode(app: FastAPI) -> DatabaseMode:
    """The database mode, detected once per process (the database may come up after the service)."""
    mode: DatabaseMode | None = app.state.mode
    if mode is None:
        async with app.state.pool.connection() as conn:
            mode = app.state.mode = await detect_mode(conn)
    return mode


async def get_mode(request: Request) -> DatabaseMode:
    return await current_mode(request.app)


async def get_writer(request: Request) -> EventWriter:
    writer: EventWriter = request.app.state.writer
    return writer


async def get_committer(request: Request) -> GroupCommitter:
    committer: GroupCommitter = request.app.state.committer
    return committer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[AsyncConnection[Any], Depends(get_connection)]
ModeDep = Annotated[DatabaseMode, Depends(get_mode)]
CommitterDep = Annotated[GroupCommitter, Depends(get_committer)]
WriterDep = Annotated[EventWriter, Depends(get_writer)]

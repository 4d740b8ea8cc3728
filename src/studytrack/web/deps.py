"""Dependencies as types: routes declare what they need, FastAPI provides it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from studytrack.config import Settings
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.events.ingest import GroupCommitter


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    return pool


async def get_connection(
    pool: Annotated[AsyncConnectionPool[Any], Depends(get_pool)],
) -> AsyncIterator[AsyncConnection[Any]]:
    async with pool.connection() as conn:
        yield conn


async def get_mode(
    request: Request, conn: Annotated[AsyncConnection[Any], Depends(get_connection)]
) -> DatabaseMode:
    """Detected once per process, on first use: the database may come up after the service."""
    mode: DatabaseMode | None = request.app.state.mode
    if mode is None:
        mode = request.app.state.mode = await detect_mode(conn)
    return mode


def get_committer(request: Request) -> GroupCommitter:
    committer: GroupCommitter = request.app.state.committer
    return committer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[AsyncConnection[Any], Depends(get_connection)]
ModeDep = Annotated[DatabaseMode, Depends(get_mode)]
PoolDep = Annotated[AsyncConnectionPool[Any], Depends(get_pool)]
CommitterDep = Annotated[GroupCommitter, Depends(get_committer)]

"""`GET /healthz`: is the database reachable, and in which mode."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from studytrack import __version__
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.database.status import TimescaleStatus, timescale_status
from studytrack.web.deadline import within
from studytrack.web.slashes import SlashTolerantRouter

log = logging.getLogger(__name__)
router = SlashTolerantRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    mode: str | None
    timescaledb: str | None
    version: str
    timescale: TimescaleStatus | None = None


class HealthUnavailable(Health):
    """The 503 answer: the health shape plus the error shape's `code` and `message`."""

    code: str = "database_unavailable"
    message: str = "the database is unreachable"


async def _probe(pool: AsyncConnectionPool[Any]) -> tuple[DatabaseMode, TimescaleStatus | None]:
    async with pool.connection() as conn:
        mode = await detect_mode(conn)
        return mode, await timescale_status(conn) if mode.is_timescaledb else None


async def current_health(request: Request) -> Health:
    """The service's health; a `HealthUnavailable` when the database does not answer in time."""
    settings = request.app.state.settings
    try:  # `within`: answers at the timeout, not after psycopg has cancelled the query on a hung database
        mode, timescale = await within(settings.db_timeout_seconds, _probe(request.app.state.pool))
    except Exception as exc:  # any failure to reach the database is "unavailable", never a 500
        log.warning("health check: database unreachable (%s)", exc.__class__.__name__)
        return HealthUnavailable(
            status="unavailable", database="unreachable", mode=None, timescaledb=None, version=__version__
        )
    request.app.state.mode = mode
    return Health(
        status="ok",
        database="ok",
        mode=mode.name,
        timescaledb=mode.timescaledb_version,
        version=__version__,
        timescale=timescale,
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": HealthUnavailable, "description": "The database is unreachable."}},
)
async def healthz(request: Request) -> Health | JSONResponse:
    health = await current_health(request)
    if isinstance(health, HealthUnavailable):
        return JSONResponse(health.model_dump(), status_code=503)
    return health

"""`GET /healthz`: is the database reachable, and in which mode; with read replicas, how each one is doing."""

from __future__ import annotations

import logging
from typing import Any

from cachetools import TTLCache
from fastapi import Request
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from studytrack import __version__
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.database.replicas import ReplicaSet, ReplicaState
from studytrack.database.status import TimescaleStatus, timescale_status
from studytrack.timeouts import within
from studytrack.web.slashes import SlashTolerantRouter

log = logging.getLogger(__name__)
router = SlashTolerantRouter(tags=["health"])
# TimescaleDB's chunk counts and compression ratio change as its policies run, and reading them walks every chunk:
# an unauthenticated probe reads them at most once per this many seconds and worker; reachability every time.
STATUS_SECONDS = 10.0
StatusCache = TTLCache[str, TimescaleStatus]


def status_cache() -> StatusCache:
    return TTLCache(maxsize=1, ttl=STATUS_SECONDS)


class ReplicaHealth(BaseModel):
    name: str = Field(description="`replica-1`, ... in the order of DATABASE_REPLICA_URL.")
    state: ReplicaState = Field(description="`ok` serves reads; `lagging`, `unreachable` and `not_a_standby` do not.")
    lag_seconds: float | None = Field(description="Behind the primary (exact to a second); null: not measurable.")


class Health(BaseModel):
    status: str
    database: str
    mode: str | None
    timescaledb: str | None
    version: str
    timescale: TimescaleStatus | None = None
    replicas: list[ReplicaHealth] = Field(
        default_factory=list, description="The read replicas (DATABASE_REPLICA_URL), as last checked."
    )


class HealthUnavailable(Health):
    """The 503 answer: the health shape plus the error shape's `code` and `message`."""

    code: str = "database_unavailable"
    message: str = "the database is unreachable"


async def _probe(pool: AsyncConnectionPool[Any], cache: StatusCache) -> tuple[DatabaseMode, TimescaleStatus | None]:
    async with pool.connection() as conn:
        mode = await detect_mode(conn)
        if not mode.is_timescaledb:
            return mode, None
        status = cache.get("timescale")
        if status is None:
            status = cache["timescale"] = await timescale_status(conn)
        return mode, status


async def current_health(request: Request) -> Health:
    """The service's health: `ok`, `degraded` (the primary is down, a replica still serves reads) or a
    `HealthUnavailable`."""
    settings, replicas = request.app.state.settings, request.app.state.replicas
    if replicas is not None and not replicas.primary_reachable:  # the replica monitor knows: no probe to wait for
        return _primary_unreachable(replicas, request.app.state.mode)
    try:  # `within`: answers at the timeout, not after psycopg has cancelled the query on a hung database
        probe = _probe(request.app.state.pool, request.app.state.timescale_status)
        mode, timescale = await within(settings.db_timeout_seconds, probe)
    except Exception as exc:  # any failure to reach the database is "unavailable", never a 500
        log.warning("health check: database unreachable (%s)", exc.__class__.__name__)
        return _primary_unreachable(replicas, request.app.state.mode)
    request.app.state.mode = mode
    return Health(
        status="ok",
        database="ok",
        mode=mode.name,
        timescaledb=mode.timescaledb_version,
        version=__version__,
        timescale=timescale,
        replicas=_replicas(replicas),
    )


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": HealthUnavailable, "description": "The database is unreachable."}},
)
async def healthz(request: Request) -> Health | JSONResponse:
    health = await current_health(request)
    if isinstance(health, HealthUnavailable):
        return JSONResponse(health.model_dump(mode="json"), status_code=503)
    return health


def _replicas(replicas: ReplicaSet | None) -> list[ReplicaHealth]:
    if replicas is None:
        return []
    return [
        ReplicaHealth(
            name=replica.name,
            state=replicas.state(replica),
            lag_seconds=None if replica.lag_seconds is None else round(replica.lag_seconds, 3),
        )
        for replica in replicas.replicas
    ]


def _primary_unreachable(replicas: ReplicaSet | None, mode: DatabaseMode | None) -> Health:
    """`degraded` (a 200) while a replica still serves reads, so a load balancer keeps the service in; else
    unavailable (a 503)."""
    if replicas is not None and replicas.serving():
        return Health(
            status="degraded",
            database="unreachable",
            mode=mode.name if mode else None,
            timescaledb=mode.timescaledb_version if mode else None,
            version=__version__,
            replicas=_replicas(replicas),
        )
    return HealthUnavailable(
        status="unavailable",
        database="unreachable",
        mode=None,
        timescaledb=None,
        version=__version__,
        replicas=_replicas(replicas),
    )

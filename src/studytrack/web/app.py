"""The application factory. Gunicorn loads `studytrack.web.app:create_app()` in each worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline
from psycopg_pool import AsyncConnectionPool

from studytrack import __version__
from studytrack.config import Settings, get_settings, redact_url
from studytrack.database.mode import DatabaseMode, detect_mode
from studytrack.database.pool import make_pool
from studytrack.database.replicas import ReplicaSet
from studytrack.events.ingest import EventWriter, GroupCommitter
from studytrack.logs import flush_access_lines
from studytrack.timeouts import within
from studytrack.web.auth import TokenCheck
from studytrack.web.dashboard import STATIC_PATH, static_files
from studytrack.web.dashboard import router as dashboard_router
from studytrack.web.deadline import MARGIN_SECONDS
from studytrack.web.deps import current_mode, primary_or_stand_in
from studytrack.web.errors import install_error_handlers
from studytrack.web.flat import add_routes
from studytrack.web.frame import RequestFrame
from studytrack.web.health import router as health_router
from studytrack.web.health import status_cache
from studytrack.web.limits import RequestLimits
from studytrack.web.metrics import RequestMetrics, count_ingested, report_forever
from studytrack.web.metrics import router as metrics_router
from studytrack.web.replicametrics import observe_replicas
from studytrack.web.routes.badge import router as badge_router
from studytrack.web.routes.dropin import router as dropin_router
from studytrack.web.routes.events import router as events_router
from studytrack.web.tracing import instrument_app

log = logging.getLogger(__name__)
# Tracing is `tracing.py`'s (OTEL_EXPORTER_OTLP_ENDPOINT); FastAPI's own would look for OpenTelemetry
# providers on every request.
NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# The order routes are tried in: the ingest and read API first, the drop-in's, then operations.
API_ROUTERS = (events_router, dropin_router, health_router, metrics_router, badge_router, dashboard_router)

WRITERS_PER_WORKER = 1

DESCRIPTION = """
Study sessions in, chart-ready time buckets out.

* `POST /api/events/` records a session (`time` without an offset means UTC).
* `GET /api/events/` sums minutes and sessions per bucket and tag in your timezone.
"""


async def _detect_mode(pool: AsyncConnectionPool[Any]) -> DatabaseMode:
    async with pool.connection() as conn:
        return await detect_mode(conn)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool, replicas = app.state.pool, app.state.replicas
    await pool.open(wait=False)  # serve (503s) even while the database is still starting
    if replicas is not None:
        await replicas.open()
    try:
        mode_source = primary_or_stand_in(app)  # the mode is the same on every server of the cluster
        app.state.mode = await within(app.state.settings.db_timeout_seconds, _detect_mode(mode_source))
        log.info("database mode: %s (PostgreSQL %s)", app.state.mode.name, app.state.mode.server_version)
    except Exception as exc:
        log.warning("database not reachable at start-up (%s); will retry per request", exc.__class__.__name__)
    app.state.writer = EventWriter(pool, mode=lambda: current_mode(app), on_written=count_ingested)
    # One writer per worker: while it writes, the next group gathers, twice as large as with two writers
    # taking turns, which cost ~12% more CPU per single POST in the workers and PostgreSQL (bench/README.md).
    app.state.committer = GroupCommitter(app.state.writer, writers=WRITERS_PER_WORKER)
    app.state.committer.start()
    reporter = asyncio.create_task(report_forever(pool, app.state.request_metrics))
    try:
        yield
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        app.state.request_metrics.flush()  # every request has been answered
        await app.state.committer.stop()
        if replicas is not None:
            await replicas.close()
        await pool.close()
        flush_access_lines()  # every request has been answered


def create_app(settings: Settings | None = None, database_url: str | None = None) -> FastAPI:
    """Build the app; `database_url` overrides the settings (the embedded server passes its own)."""
    settings = settings or get_settings()
    url = database_url or settings.database_url
    if url is None:
        raise RuntimeError("no database: set DATABASE_URL, or start with `studytrack serve` for the embedded one")
    log.info("database: %s", redact_url(url))

    # `/docs` and `/redoc` load Swagger UI and ReDoc from this service (`/static-offline-docs`), not a CDN.
    app = FastAPIOffline(
        title="studytrack",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        telemetry=NO_NATIVE_TELEMETRY,
    )
    app.state.settings = settings
    app.state.pool = make_pool(url, settings)
    # Reads may go to hot standbys; writes, token checks and migrations always go to the primary (docs/scaling.md).
    replicated = bool(settings.database_replica_urls)
    app.state.replicas = ReplicaSet(url, settings, on_checked=observe_replicas) if replicated else None
    app.state.mode = None
    app.state.timescale_status = status_cache()  # /healthz: TimescaleDB figures, read at most every STATUS_SECONDS
    app.state.token_check = TokenCheck(app, disabled=settings.auth_disabled)
    if settings.auth_disabled:
        log.warning("AUTH_DISABLED=true: every request is served WITHOUT a token check. Never do this in public.")
    limits = RequestLimits(max_body_bytes=settings.max_body_bytes, max_batch_bytes=settings.max_batch_bytes)
    app.state.request_metrics = RequestMetrics()
    deadline_seconds = settings.db_timeout_seconds + MARGIN_SECONDS
    app.add_middleware(
        RequestFrame, limits=limits, deadline_seconds=deadline_seconds, metrics=app.state.request_metrics
    )
    if settings.cors_origins:  # outside the frame: its own answers (413, 503) carry CORS headers too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials="*" not in settings.cors_origins,  # never `*` together with credentials
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Read-From"],  # X-Read-From: read your own writes
        )
    install_error_handlers(app)
    add_routes(app, API_ROUTERS)
    app.mount(STATIC_PATH, static_files(), name="static")
    instrument_app(app)  # OpenTelemetry tracing, only when OTEL_EXPORTER_OTLP_ENDPOINT is set
    return app

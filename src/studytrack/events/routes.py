"""`/api/events/`, `/api/sessions/`, `/api/stats/`: parse, call one service function, answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from studytrack.events import service
from studytrack.events.models import BucketSeries, EventCreate, EventPublic, SessionPage, Stats
from studytrack.events.params import BucketQuery, SessionQuery, StatsQuery
from studytrack.web.deps import ConnectionDep, ModeDep, SettingsDep
from studytrack.web.errors import ApiError, ErrorBody

router = APIRouter(
    prefix="/api", tags=["events"], responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}}
)


@router.post(
    "/events/",
    status_code=status.HTTP_201_CREATED,
    response_model=EventPublic,
    responses={
        200: {"model": EventPublic, "description": "This id was already stored: nothing new was written."},
        409: {"model": ErrorBody, "description": "The id is already used by a different session."},
    },
)
async def create_event(event: EventCreate, conn: ConnectionDep, response: Response) -> EventPublic:
    """Record one study session. The 201 is sent only after the session is committed."""
    async with conn.transaction():
        stored, created = await service.create_event(conn, event=event)
    if not created:
        response.status_code = status.HTTP_200_OK
    return stored


@router.get("/events/", response_model=BucketSeries)
async def read_buckets(
    query: Annotated[BucketQuery, Query()], conn: ConnectionDep, mode: ModeDep, settings: SettingsDep
) -> BucketSeries:
    """Minutes and session counts per time bucket and tag, in the caller's timezone, ready to chart."""
    return await service.bucket_series(
        conn, query=query, timescaledb=mode.is_timescaledb, max_buckets=settings.max_buckets
    )


@router.get("/events/{event_id}/", response_model=EventPublic, responses={404: {"model": ErrorBody}})
async def read_event(event_id: uuid.UUID, conn: ConnectionDep) -> EventPublic:
    event = await service.get_event(conn, event_id=event_id)
    if event is None:
        raise ApiError(404, "event_not_found", f"no study session with id {event_id}")
    return event


@router.get("/sessions/", response_model=SessionPage)
async def list_sessions(query: Annotated[SessionQuery, Query()], conn: ConnectionDep) -> SessionPage:
    """Raw sessions, newest first; follow `next_cursor` for older ones."""
    return await service.list_sessions(conn, query=query)


@router.get("/stats/", response_model=Stats)
async def read_stats(query: Annotated[StatsQuery, Query()], conn: ConnectionDep) -> Stats:
    """Total minutes and sessions, overall and per tag."""
    return await service.session_stats(conn, filters=query)

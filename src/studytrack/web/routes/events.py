"""`/api/events/`, `/api/sessions/`, `/api/stats/`: parse, call one service function, answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response, status

from studytrack.auth.tokens import Principal
from studytrack.events import service
from studytrack.events.batch import parse_events
from studytrack.events.export import BucketExportQuery, to_csv, wanted_format
from studytrack.events.ingest import GroupCommitter, Outcome, resolve
from studytrack.events.models import (
    BUCKET_SERIES,
    BatchItem,
    BatchResult,
    BucketSeries,
    EventCreate,
    EventPublic,
    SessionPage,
    Stats,
)
from studytrack.events.params import SessionQuery, StatsQuery
from studytrack.events.retention import refuse_expired
from studytrack.web.auth import AUTH_ERRORS, AdminAccess, IngestAccess, ReadAccess, principal, token_scope, user_scope
from studytrack.web.deps import (
    ModeDep,
    ReadConnectionDep,
    SettingsDep,
    WriterDep,
    primary_connection,
    read_on_replica,
)
from studytrack.web.direct import served_directly
from studytrack.web.errors import ApiError, ErrorBody
from studytrack.web.limits import BODY_TOO_LARGE, URL_TOO_LONG
from studytrack.web.slashes import SlashTolerantRouter

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_FILENAME = "studytrack-buckets.csv"
CSV_RESPONSE: dict[str, Any] = {  # the OpenAPI description of the CSV answer
    "description": "JSON by default; CSV with `format=csv` or `Accept: text/csv`.",
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "bucket,tag,minutes,count,avg_minutes\r\n2025-01-06T00:00:00+01:00,cka,45,2,22.5\r\n",
        }
    },
}


def csv_response(series: BucketSeries) -> Response:
    return Response(
        to_csv(series),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{CSV_FILENAME}"', "Vary": "Accept"},
    )


router = SlashTolerantRouter(
    prefix="/api",
    tags=["events"],
    responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}} | AUTH_ERRORS | URL_TOO_LONG,
)


# The single POST's answers besides its 201 (OpenAPI).
ALREADY_STORED: dict[int | str, dict[str, Any]] = {
    200: {"model": EventPublic, "description": "This session was already stored: nothing new was written."},
    409: {"model": ErrorBody, "description": "Its id and time hold a different session."},
}


def _scoped(event: EventCreate, access: Principal) -> EventCreate:
    """The event as `access` may write it: a per-user token's user, or a 403 for another user's event."""
    user_id = user_scope(access, event.user_id)
    return event if user_id == event.user_id else event.model_copy(update={"user_id": user_id})


@router.post(
    "/events/",
    status_code=status.HTTP_201_CREATED,
    response_model=EventPublic,
    responses=ALREADY_STORED | BODY_TOO_LARGE,
)
@token_scope("ingest")
@served_directly(EventCreate)  # FastAPI's handler would cost more than everything else here (web/direct.py)
async def create_event(event: EventCreate, request: Request, response: Response) -> EventPublic:
    """Record one study session. The 201 is sent only after the session is committed."""
    state = request.app.state  # not dependencies: FastAPI solves each dependency anew on every request
    event = _scoped(event, principal(request))
    now = datetime.now(UTC)
    refuse_expired([event], retention=state.settings.retention, now=now, batch=False)
    committer: GroupCommitter = state.committer
    result = await committer.submit(resolve(event, now=now))
    if result.outcome is Outcome.CONFLICT:
        raise ApiError(
            409, "id_conflict", f"id {result.event.id} names another session; send a new id for a new session"
        )
    if result.outcome is Outcome.DUPLICATE:
        response.status_code = status.HTTP_200_OK
    return EventPublic.model_validate(result.stored)


@router.post(
    "/events/batch",
    response_model=BatchResult,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/EventCreate"}}
                },
                "application/x-ndjson": {"schema": {"type": "string", "description": "One EventCreate per line."}},
            },
        }
    },
    responses={413: {"model": ErrorBody}},
)
async def create_events(
    request: Request, access: IngestAccess, writer: WriterDep, settings: SettingsDep
) -> BatchResult:
    """Record many sessions at once (JSON array or NDJSON), all or nothing: one bad item rejects the batch."""
    body = await request.body()  # already capped at MAX_BATCH_BYTES by the request frame (limits.py)
    events = parse_events(
        body, content_type=request.headers.get("content-type", ""), max_events=settings.max_batch_events
    )
    events = [_scoped(event, access) for event in events]
    now = datetime.now(UTC)
    refuse_expired(events, retention=settings.retention, now=now, batch=True)
    results = await writer.write([resolve(event, now=now) for event in events])
    return BatchResult(
        inserted=sum(result.outcome is Outcome.INSERTED for result in results),
        duplicates=sum(result.outcome is Outcome.DUPLICATE for result in results),
        conflicts=sum(result.outcome is Outcome.CONFLICT for result in results),
        not_inserted=[
            BatchItem(index=index, id=result.event.id, outcome=result.outcome.value)
            for index, result in enumerate(results)
            if result.outcome is not Outcome.INSERTED
        ],
    )


@router.get("/events/", response_model=BucketSeries, responses={200: CSV_RESPONSE})
async def read_buckets(
    query: Annotated[BucketExportQuery, Query()],
    access: ReadAccess,
    conn: ReadConnectionDep,
    mode: ModeDep,
    settings: SettingsDep,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Minutes and session counts per time bucket and tag, in the caller's timezone, ready to chart (or CSV)."""
    query = query.model_copy(update={"user_id": user_scope(access, query.user_id)})
    series = await service.bucket_series(
        conn,
        query=query,
        mode=mode,
        limits=service.ChartLimits.of(settings),
    )
    if wanted_format(query.format, accept) == "csv":
        return csv_response(series)
    # Serialized straight to JSON: FastAPI would first validate our own answer again, item by item.
    return Response(BUCKET_SERIES.dump_json(series), media_type="application/json")


@router.get("/events/{event_id}/", response_model=EventPublic, responses={404: {"model": ErrorBody}})
async def read_event(event_id: uuid.UUID, access: ReadAccess, conn: ReadConnectionDep, request: Request) -> EventPublic:
    event = await service.get_event(conn, event_id=event_id)
    if event is None and read_on_replica(request):  # an id just written may not be replayed yet: ask the primary
        async with primary_connection(request.app) as primary:
            event = await service.get_event(primary, event_id=event_id)
    if event is None or (access.user_id is not None and event.user_id != access.user_id):
        raise ApiError(404, "event_not_found", f"no study session with id {event_id}")
    return event


@router.get("/sessions/", response_model=SessionPage)
async def list_sessions(
    query: Annotated[SessionQuery, Query()], access: ReadAccess, conn: ReadConnectionDep
) -> SessionPage:
    """Raw sessions, newest first; follow `next_cursor` for older ones."""
    query = query.model_copy(update={"user_id": user_scope(access, query.user_id)})
    return await service.list_sessions(conn, query=query)


@router.get("/stats/", response_model=Stats)
async def read_stats(
    query: Annotated[StatsQuery, Query()],
    access: ReadAccess,
    conn: ReadConnectionDep,
    mode: ModeDep,
    settings: SettingsDep,
) -> Stats:
    """Total minutes and sessions, overall and per tag."""
    query = query.model_copy(update={"user_id": user_scope(access, query.user_id)})
    return await service.session_stats(conn, filters=query, mode=mode, max_tags=settings.max_chart_tags)


@router.delete(
    "/events/{event_id}/",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": ErrorBody}},
)
async def delete_event(event_id: uuid.UUID, access: AdminAccess, writer: WriterDep) -> Response:
    """Remove a mistaken session (admin scope). Charts reflect it as soon as this answers."""
    if not await writer.delete(event_id, user_id=access.user_id):
        raise ApiError(404, "event_not_found", f"no study session with id {event_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)

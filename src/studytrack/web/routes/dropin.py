"""Drop-in for the CSV-backed "DevOps study tracker" API: its front end works unchanged against studytrack.

`GET /`, `POST /sessions` (200, as the tracker), `GET /sessions`, `GET /stats` and `GET /health` answer in the
tracker's shapes, through the same write path (group commit: the 200 follows the commit) and service functions
as `/api/...`. Its clients authenticate with the token as the password of the `API_URL`
(`http://tracker:TOKEN@host:8000`, HTTP Basic auth). Differences:

* `timestamp` is ISO 8601 in UTC with its offset (`2025-01-06T07:54:00Z`); the tracker wrote the server's
  naive local time (`datetime.isoformat()`). A browser's `new Date(timestamp)` reads both, ours unambiguously.
* Tags match case-insensitively (`CKA` and `cka` are one tag) and come back in the first spelling stored.
* `minutes` must be a whole number from 1 to 1440 (the tracker: above 0). As in the tracker, a numeric string
  such as `"25"` is accepted, and fields it does not know are ignored: a session always starts now (to record
  past sessions use `POST /api/events/` or `studytrack import`). Sessions are stored with source `study-tracker`.
* `GET /sessions` lists sessions oldest first (the tracker's file order), but at most the newest
  `MAX_SESSIONS`; `GET /api/sessions/` pages through any number. `?tag=` is case-insensitive, as before.
* Errors have studytrack's shape (`{"status", "code", "message", "details"}`), e.g. a 422 for `minutes: 0`.
* `GET /health` checks the database like `/healthz`: `{"status": "healthy"}`, or a 503
  `{"status": "unhealthy", "code": "database_unavailable", "message": ...}`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from studytrack.events import service
from studytrack.events.ingest import resolve
from studytrack.events.models import EventCreate, EventPublic, Stats, Tag, TagSpelling
from studytrack.events.params import SessionQuery, StatsQuery
from studytrack.events.tracker_csv import TRACKER_SOURCE
from studytrack.web.auth import AUTH_ERRORS, IngestAccess, ReadAccess
from studytrack.web.deps import CommitterDep, ModeDep, ReadConnectionDep, SettingsDep
from studytrack.web.errors import ErrorBody
from studytrack.web.health import HealthUnavailable, current_health
from studytrack.web.limits import BODY_TOO_LARGE, UNREADABLE_BODY, URL_TOO_LONG
from studytrack.web.slashes import SlashTolerantRouter

TRACKER_GREETING = "DevOps Study Tracker API"
MAX_SESSIONS = 10_000
PAGE_SIZE = 1000  # sessions per service call (SessionQuery's largest page)

router = SlashTolerantRouter(tags=["study tracker drop-in"], responses={503: {"model": ErrorBody}})
_INVALID: dict[int | str, dict[str, Any]] = {422: {"model": ErrorBody}}


class TrackerSessionCreate(BaseModel):
    """What the tracker's front end sends."""

    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [{"minutes": 25, "tag": "CKA"}]})

    minutes: int = Field(ge=1, le=1440, description="Whole minutes, 1 to 1440.")
    tag: TagSpelling = Field(description="1-64 characters, trimmed; case-insensitive, shown as first spelled.")


class TrackerSession(BaseModel):
    id: uuid.UUID
    timestamp: datetime = Field(description="Start of the session, ISO 8601 in UTC with its offset.")
    minutes: int
    tag: str

    @classmethod
    def of(cls, event: EventPublic) -> TrackerSession:
        return cls(id=event.id, timestamp=event.time, minutes=event.minutes, tag=event.tag)


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class TrackerSessionFilter(BaseModel):
    """Other query parameters are ignored, as by the tracker (e.g. a front end's cache buster `_=`)."""

    tag: Annotated[Tag | None, BeforeValidator(_blank_is_none)] = Field(
        default=None, description="Only this tag (case-insensitive); empty = all."
    )


class TrackerHealth(BaseModel):
    status: str


class TrackerHealthUnavailable(TrackerHealth):
    code: str = "database_unavailable"
    message: str = "the database is unreachable"


class TrackerRoot(BaseModel):
    message: str


@router.get("/", response_model=TrackerRoot)
async def root() -> TrackerRoot:
    """The tracker's greeting; people find the API at `/docs` and the charts at `/dashboard`."""
    return TrackerRoot(message=TRACKER_GREETING)


@router.post(
    "/sessions",
    status_code=status.HTTP_200_OK,
    response_model=TrackerSession,
    responses=_INVALID | AUTH_ERRORS | BODY_TOO_LARGE | UNREADABLE_BODY,
)
async def create_session(body: TrackerSessionCreate, access: IngestAccess, committer: CommitterDep) -> TrackerSession:
    """Record a session that starts now. The 200 (the tracker's status) is sent only after it is committed."""
    event = EventCreate(tag=body.tag, minutes=body.minutes, source=TRACKER_SOURCE, user_id=access.user_id)
    # Neither id nor time comes in: the derived id is new, so the outcome is always `inserted`.
    result = await committer.submit(resolve(event, now=datetime.now(UTC)))
    return TrackerSession.of(EventPublic.model_validate(result.stored))


@router.get("/sessions", response_model=list[TrackerSession], responses=_INVALID | AUTH_ERRORS | URL_TOO_LONG)
async def list_sessions(
    query: Annotated[TrackerSessionFilter, Query()], access: ReadAccess, conn: ReadConnectionDep
) -> list[TrackerSession]:
    """Sessions oldest first: the newest `MAX_SESSIONS` of them."""
    page_query = SessionQuery(tags=[query.tag] if query.tag else [], user_id=access.user_id, limit=PAGE_SIZE)
    newest_first: list[EventPublic] = []
    while len(newest_first) < MAX_SESSIONS:
        page = await service.list_sessions(conn, query=page_query)
        newest_first += page.items
        if page.next_cursor is None:
            break
        page_query = page_query.model_copy(update={"cursor": page.next_cursor})
    return [TrackerSession.of(event) for event in reversed(newest_first[:MAX_SESSIONS])]


@router.get("/stats", response_model=Stats, responses=_INVALID | AUTH_ERRORS)
async def read_stats(access: ReadAccess, conn: ReadConnectionDep, mode: ModeDep, settings: SettingsDep) -> Stats:
    """Total minutes and sessions, overall and per tag."""
    filters = StatsQuery(user_id=access.user_id)
    return await service.session_stats(conn, filters=filters, mode=mode, max_tags=settings.max_chart_tags)


@router.get(
    "/health",
    response_model=TrackerHealth,
    responses={503: {"model": TrackerHealthUnavailable, "description": "The database is unreachable."}},
)
async def health(request: Request) -> TrackerHealth | JSONResponse:
    if isinstance(await current_health(request), HealthUnavailable):
        body = TrackerHealthUnavailable(status="unhealthy")
        return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
    return TrackerHealth(status="healthy")

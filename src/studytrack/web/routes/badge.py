"""`GET /api/badge.svg`: a shields-style badge, `cka | 12h 30m this week`, from the bucket query."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from studytrack.events import service
from studytrack.events.badge import PERIODS, Period, current_period, format_minutes, render_badge
from studytrack.events.models import Label, Tag
from studytrack.events.params import BucketQuery, TimeZoneName
from studytrack.web.auth import AUTH_ERRORS, BadgeAccess, user_scope
from studytrack.web.deps import ModeDep, ReadConnectionDep, SettingsDep
from studytrack.web.errors import ErrorBody
from studytrack.web.limits import URL_TOO_LONG
from studytrack.web.slashes import SlashTolerantRouter

CACHE_CONTROL = "max-age=300"


class BadgeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default_factory=list, description="Repeat to sum several; none = all tags.")
    user_id: Label | None = None
    duration: Period = Field(default="1 week", description="The period the badge totals, the one holding now.")
    tz: TimeZoneName = Field(default="UTC", description="IANA zone: the period starts at its local midnight.")
    token: str | None = Field(
        default=None, description="A read token, for pages that send no headers (READMEs); read by `badge_access`."
    )


def current_time() -> datetime:
    return datetime.now(UTC)


router = SlashTolerantRouter(
    prefix="/api", tags=["badges"], responses={422: {"model": ErrorBody}, 503: {"model": ErrorBody}}
)


@router.get(
    "/badge.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}, "description": "The badge; cached for 5 minutes."}}
    | AUTH_ERRORS
    | URL_TOO_LONG,
)
async def read_badge(
    query: Annotated[BadgeQuery, Query()],
    access: BadgeAccess,
    conn: ReadConnectionDep,
    mode: ModeDep,
    settings: SettingsDep,
    now: Annotated[datetime, Depends(current_time)],
) -> Response:
    """Total study time of the current day, week, month or year in `tz`, as an SVG badge."""
    start, end = current_period(query.duration, now.astimezone(ZoneInfo(query.tz)))
    user_id = user_scope(access, query.user_id) if access else query.user_id
    buckets = BucketQuery(tags=query.tags, user_id=user_id, duration=query.duration, tz=query.tz, start=start, end=end)
    series = await service.bucket_series(
        conn,
        query=buckets,
        mode=mode,
        limits=service.ChartLimits.of(settings),
    )
    minutes = sum(item["minutes"] for item in series["items"])
    spellings = await service.tag_spellings(conn, set(query.tags))
    label = ", ".join(spellings[tag] for tag in dict.fromkeys(query.tags)) or "study"
    svg = render_badge(label, f"{format_minutes(minutes)} {PERIODS[query.duration]}")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": CACHE_CONTROL})

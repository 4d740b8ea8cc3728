"""`GET /api/badge.svg`: a shields-style badge, `cka | 12h 30m this week`, from the bucket query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from studytrack.auth.deps import AUTH_ERRORS, BadgeAccess, user_scope
from studytrack.events import service
from studytrack.events.models import Label, Tag
from studytrack.events.params import BucketQuery, TimeZoneName
from studytrack.web.deps import ConnectionDep, ModeDep, SettingsDep
from studytrack.web.errors import ErrorBody
from studytrack.web.limits import URL_TOO_LONG
from studytrack.web.slashes import SlashTolerantRouter

Period = Literal["1 day", "1 week", "1 month", "1 year"]
PERIODS: dict[Period, str] = {"1 day": "today", "1 week": "this week", "1 month": "this month", "1 year": "this year"}
CACHE_CONTROL = "max-age=300"
_NARROW, _WIDE = set("fijlrt!.,:;'|() "), set("mwMW@%")


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


def current_period(duration: Period, now: datetime) -> tuple[datetime, datetime]:
    """Local start and end (naive, read in `tz` by BucketQuery) of the calendar bucket holding local `now`."""
    day = datetime(now.year, now.month, now.day)
    if duration == "1 day":
        return day, day + timedelta(days=1)
    if duration == "1 week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    if duration == "1 month":
        first = day.replace(day=1)
        return first, (first + timedelta(days=32)).replace(day=1)
    return day.replace(month=1, day=1), day.replace(year=day.year + 1, month=1, day=1)


def format_minutes(minutes: int) -> str:
    return f"{minutes // 60}h {minutes % 60}m"


def _text_width(text: str) -> int:
    """Rough width in pixels of `text` in 11px Verdana; `textLength` makes the renderer fit it exactly."""
    return round(sum(3.9 if char in _NARROW else 10.0 if char in _WIDE else 7.0 for char in text))


def render_badge(label: str, value: str) -> str:
    left, right = _text_width(label) + 10, _text_width(value) + 10
    width = left + right
    title = f"{label}: {value}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f"aria-label={quoteattr(title)}><title>{escape(title)}</title>"
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="#2a7ab0"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2}" y="14" textLength="{left - 10}">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="14" textLength="{right - 10}">{escape(value)}</text></g></svg>'
    )


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
    conn: ConnectionDep,
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
        max_buckets=settings.max_buckets,
        max_rows=settings.max_chart_rows,
        max_tags=settings.max_chart_tags,
    )
    minutes = sum(item["minutes"] for item in series["items"])
    spellings = await service.tag_spellings(conn, set(query.tags))
    label = ", ".join(spellings[tag] for tag in dict.fromkeys(query.tags)) or "study"
    svg = render_badge(label, f"{format_minutes(minutes)} {PERIODS[query.duration]}")
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": CACHE_CONTROL})

"""Query parameters of the read endpoints, validated before any SQL runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from studytrack.events.durations import Duration, parse_duration
from studytrack.events.models import Label, Tag

DEFAULT_RANGE = timedelta(days=30)
EARLIEST_YEAR, LATEST_YEAR = 1900, 2199


@lru_cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _check_timezone(name: str) -> str:
    if name != "UTC" and name not in _timezones():
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin' or 'UTC'")
    return name


def _check_year(value: datetime | None) -> datetime | None:
    if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
    return value


def _check_duration(text: str) -> str:
    return str(parse_duration(text))  # canonical spelling, e.g. "week" -> "1 week"


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Instant = Annotated[datetime, AfterValidator(_check_year)]
DurationText = Annotated[str, AfterValidator(_check_duration)]


class EventFilters(BaseModel):
    """Filters shared by buckets, sessions and stats. A time without an offset is read in `tz`."""

    model_config = ConfigDict(extra="forbid")

    tags: list[Tag] = Field(default_factory=list, description="Repeat to select several; none = all tags.")
    user_id: Label | None = None
    start: Instant | None = Field(default=None, description="Inclusive ISO 8601 instant or local time.")
    end: Instant | None = Field(default=None, description="Exclusive ISO 8601 instant or local time.")

    @model_validator(mode="after")
    def _localize(self) -> EventFilters:
        zone = ZoneInfo(getattr(self, "tz", "UTC"))
        if self.start is not None and self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=zone)
        if self.end is not None and self.end.tzinfo is None:
            self.end = self.end.replace(tzinfo=zone)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class BucketQuery(EventFilters):
    duration: DurationText = Field(
        default="1 day", description="Bucket width: `N minute(s)|hour(s)|day(s)|week(s)|month(s)|year(s)`."
    )
    tz: TimeZoneName = Field(default="UTC", description="IANA zone: buckets start at its local midnight.")
    fill: bool = Field(default=False, description="Zero rows for empty buckets, for every tag shown.")

    @model_validator(mode="after")
    def _resolve(self) -> BucketQuery:
        if self.end is None:
            self.end = datetime.now(UTC)
        if self.start is None:
            self.start = self.end - DEFAULT_RANGE
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self

    @property
    def width(self) -> Duration:
        return parse_duration(self.duration)


class SessionQuery(EventFilters):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")


class StatsQuery(EventFilters):
    pass

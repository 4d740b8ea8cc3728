"""The event table and its API schemas (SQLModel): EventBase -> EventCreate / Event / EventPublic."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict, TypeAdapter, field_validator
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)  # clocks drift; a session a day ahead is a typo


# PostgreSQL text cannot hold NUL, and lone surrogates (JSON can spell them: "\ud800") cannot be encoded
# as UTF-8. One regular expression per field finds any of them, and control characters in one-line fields.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_UNSTORABLE_OR_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def error_message(error: Mapping[str, Any]) -> str:
    """A validation error as people read it: our own checks' messages without pydantic's "Value error, "."""
    return str(error.get("msg", "is invalid")).removeprefix("Value error, ")


def _refuse(character: str) -> NoReturn:
    if character == "\x00":
        raise ValueError("must not contain NUL characters")
    if "\ud800" <= character <= "\udfff":
        raise ValueError("must be valid Unicode text")
    raise ValueError("must not contain control characters")


def _reject_unstorable(value: str) -> str:
    if found := _UNSTORABLE.search(value):
        _refuse(found.group())
    return value


def _single_line(value: str) -> str:
    if found := _UNSTORABLE_OR_CONTROL.search(value):
        _refuse(found.group())
    return value


def tag_key(spelling: str) -> str:
    """Tags are case-insensitive: events carry this key, people see the first spelling stored for it."""
    return spelling.lower()


def _tag_spelling(value: str) -> str:
    spelling = _single_line(value).strip()
    # Lower-casing may lengthen a few characters (`İ`): the key must fit as well.
    if not 1 <= len(spelling) <= 64 or len(tag_key(spelling)) > 64:
        raise ValueError("must be 1 to 64 characters after trimming spaces")
    return spelling


def normalize_tag(value: str) -> str:
    """A tag to match (a filter): its key."""
    return tag_key(_tag_spelling(value))


def _trimmed_label(value: str) -> str:
    label = _single_line(value).strip()
    if not 1 <= len(label) <= 128:
        raise ValueError("must be 1 to 128 characters after trimming spaces")
    return label


Tag = Annotated[str, AfterValidator(normalize_tag)]  # a tag to match: case-insensitive
TagSpelling = Annotated[str, AfterValidator(_tag_spelling)]  # a tag as written: trimmed, its case kept
Label = Annotated[str, AfterValidator(_trimmed_label)]
Note = Annotated[str, PydanticField(max_length=1000), AfterValidator(_reject_unstorable)]


class EventCreate(BaseModel):
    """What an app sends. A `time` without a UTC offset means UTC; no `time` means now.

    A plain pydantic model (not SQLModel): validated once per ingested event, 10,000 times per batch.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"tag": "CKA", "minutes": 25, "time": "2025-01-06T08:54:00+01:00", "source": "pomodoro-cli"}]
        },
    )

    tag: TagSpelling = PydanticField(
        description="1-64 characters, trimmed. Case-insensitive (`CKA` and `cka` are one tag), shown everywhere "
        "in the first spelling stored."
    )
    minutes: Annotated[int, Strict()] = PydanticField(ge=1, le=1440, description="Whole minutes, 1 to 1440.")
    time: datetime | None = PydanticField(
        default=None,
        description="ISO 8601 start of the session. Without an offset it means UTC. Default: now.",
    )
    user_id: Label | None = PydanticField(default=None, description="The sending app's id for the person.")
    note: Note | None = None
    source: Label | None = PydanticField(default=None, description="Which app sent the session.")
    id: uuid.UUID | None = PydanticField(
        default=None, description="Your own UUID for the session; sending it again never stores it twice."
    )

    @field_validator("time")
    @classmethod
    def _time_in_range(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value < EARLIEST_TIME:
            raise ValueError("must be on or after 1970-01-01")
        if value > datetime.now(UTC) + FUTURE_TOLERANCE:
            raise ValueError("must not be more than a day in the future")
        return value


class EventPublic(BaseModel):
    """A stored session, as the API returns it (a plain pydantic model: built once per ingested event)."""

    tag: str = PydanticField(description="Certification or topic, in the first spelling stored for it.")
    minutes: int
    user_id: str | None = None
    note: str | None = None
    source: str | None = None
    id: uuid.UUID
    time: datetime
    received_at: datetime


# A chart answer is a typed dict, not a model: a year of days per tag is hundreds of items, and FastAPI
# validates and serializes typed dicts in pydantic-core without building an object per item.
class BucketPublic(TypedDict):
    """Minutes and session count of one tag in one bucket; `bucket` carries the caller's UTC offset."""

    bucket: datetime
    tag: str
    minutes: int
    count: int
    avg_minutes: Annotated[
        float | None, PydanticField(description="minutes / count, 2 decimals; null for an empty bucket.")
    ]


class BucketSeries(TypedDict):
    duration: str
    tz: str
    start: datetime
    end: datetime
    items: list[BucketPublic]


BUCKET_SERIES = TypeAdapter(BucketSeries)


class SessionPage(SQLModel):
    items: list[EventPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page; null at the end.")


class Stats(SQLModel):
    total_time: int
    total_sessions: int
    time_by_tag: dict[str, int]
    sessions_by_tag: dict[str, int]


class BatchItem(SQLModel):
    index: int = Field(description="Position of the event in the batch (0-based).")
    id: uuid.UUID
    outcome: str = PydanticField(
        description="`duplicate`: already stored; `conflict`: its id and time hold another session."
    )


class BatchResult(SQLModel):
    inserted: int
    duplicates: int
    conflicts: int
    not_inserted: list[BatchItem] = Field(description="Every event that was not written, and why.")

"""The schema: every table and index, as SQLModel table models.

The migrations create exactly this (`studytrack migrate --check` compares the two). The application
reads and writes through the SQL in `events/queries.py` and `auth/tokens.py`; these models say what
those statements find. TimescaleDB mode adds what SQL models cannot carry: `events` becomes a hypertable
on `time`, compressed by the columnstore (see migrations/versions/0001_baseline.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Field, SQLModel


class Event(SQLModel, table=True):
    """One study session. The primary key holds `time` because a hypertable's unique keys must contain it;
    `event_ids` is what makes an id name one event."""

    __tablename__ = "events"
    __table_args__ = (
        PrimaryKeyConstraint("id", "time", name="events_pkey"),
        CheckConstraint("char_length(tag) BETWEEN 1 AND 64", name="events_tag_check"),
        CheckConstraint("minutes BETWEEN 1 AND 1440", name="events_minutes_check"),
        CheckConstraint("char_length(note) <= 1000", name="events_note_check"),
        # Charts filter by tag or person and a time range and read only minutes: index-only scans.
        Index("events_tag_time_idx", "tag", text("time DESC"), postgresql_include=["minutes"]),
        Index(
            "events_user_time_idx",
            "user_id",
            text("time DESC"),
            postgresql_include=["tag", "minutes"],
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index(
            "events_user_tag_time_idx",
            "user_id",
            "tag",
            text("time DESC"),
            postgresql_include=["minutes"],
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index("events_time_idx", text("time DESC")),  # the index a hypertable keeps on its time column
    )

    id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    tag: str = Field(sa_column=Column(Text, nullable=False))
    minutes: int = Field(sa_column=Column(Integer, nullable=False))
    user_id: str | None = Field(default=None, sa_column=Column(Text))
    note: str | None = Field(default=None, sa_column=Column(Text))
    source: str | None = Field(default=None, sa_column=Column(Text))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))


class EventId(SQLModel, table=True):
    """The one event an id names, claimed in the same statement that writes the event."""

    __tablename__ = "event_ids"

    id: uuid.UUID = Field(primary_key=True)
    time: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class RollupRow(SQLModel):
    """A rollup's row: minutes and sessions per tag and UTC bucket of its grain, kept exact by the statements
    that insert and delete events. Every write updates rows here, so they are updated in place: the key holds
    no sums and pages keep room for a row's next version (`ROLLUP_STORAGE`), so an update writes no index entry."""

    tag: str = Field(sa_type=Text, nullable=False)
    bucket: datetime = Field(sa_type=DateTime(timezone=True), nullable=False)
    minutes: int = Field(sa_type=BigInteger, nullable=False)
    count: int = Field(sa_type=BigInteger, nullable=False)


ROLLUP_STORAGE = {"postgresql_with": {"fillfactor": 70}}  # migration 0009


def _rollup_key(table: str, *columns: str) -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint(*columns, name=f"{table}_pkey")


class Rollup15m(RollupRow, table=True):
    """Per 15-minute bucket: charts whose edges are on the quarter hour (offsets such as +05:30, 15-minute widths).
    Keyed by the bucket first, as `events_1h`."""

    __tablename__ = "events_15m"
    __table_args__ = (_rollup_key("events_15m", "bucket", "tag"), ROLLUP_STORAGE)


class Rollup1h(RollupRow, table=True):
    """Per hour: charts whose bucket edges all fall on whole hours. Keyed by the hour first: a daily chart looks
    up the hours between its edges and UTC midnight, for every tag."""

    __tablename__ = "events_1h"
    __table_args__ = (_rollup_key("events_1h", "bucket", "tag"), ROLLUP_STORAGE)


class Rollup6h(RollupRow, table=True):
    """Per six UTC hours: charts of days over all users in zones far from UTC."""

    __tablename__ = "events_6h"
    __table_args__ = (_rollup_key("events_6h", "tag", "bucket"), ROLLUP_STORAGE)


class Rollup1d(RollupRow, table=True):
    """Per UTC day: charts of days or longer over all users, and totals."""

    __tablename__ = "events_1d"
    __table_args__ = (_rollup_key("events_1d", "tag", "bucket"), ROLLUP_STORAGE)


class TagSpelling(SQLModel, table=True):
    """How people spell a tag: `tag` is the key events carry (trimmed, lower-cased), `spelling` the first
    spelling stored for it, shown wherever the tag is (never updated: the first seen wins)."""

    __tablename__ = "tag_spellings"
    __table_args__ = (CheckConstraint("char_length(spelling) BETWEEN 1 AND 64", name="tag_spellings_spelling_check"),)

    tag: str = Field(sa_column=Column(Text, primary_key=True))
    spelling: str = Field(sa_column=Column(Text, nullable=False))


class ApiToken(SQLModel, table=True):
    """An API token: only a SHA-256 of its secret is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint("char_length(name) BETWEEN 1 AND 64", name="api_tokens_name_check"),
        CheckConstraint(
            "cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']", name="api_tokens_scopes_check"
        ),
    )

    name: str = Field(sa_column=Column(Text, primary_key=True))
    key_id: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    secret_sha256: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    scopes: list[str] = Field(sa_column=Column(ARRAY(Text), nullable=False))
    user_id: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()))

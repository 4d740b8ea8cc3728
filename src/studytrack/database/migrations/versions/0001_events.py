"""The events table; a hypertable on `time` when TimescaleDB is available.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import logging

from alembic import op
from sqlalchemy import text

from studytrack.database.timescale import enable_timescaledb

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

log = logging.getLogger("studytrack.migrations")


def upgrade() -> None:
    # The primary key includes `time` because a hypertable's unique keys must contain its
    # partitioning column; `id` first so a lookup by id is an index probe per chunk.
    op.execute(
        """
        CREATE TABLE events (
            id          uuid        NOT NULL,
            time        timestamptz NOT NULL,
            tag         text        NOT NULL CHECK (char_length(tag) BETWEEN 1 AND 64),
            minutes     integer     NOT NULL CHECK (minutes BETWEEN 1 AND 1440),
            user_id     text,
            note        text        CHECK (char_length(note) <= 1000),
            source      text,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (id, time)
        )
        """
    )
    # The bucket query filters by tag (or user) and time range and reads only `minutes`:
    # these indexes let it run as an index-only scan.
    op.execute("CREATE INDEX events_tag_time_idx ON events (tag, time DESC) INCLUDE (minutes)")
    op.execute(
        "CREATE INDEX events_user_time_idx ON events (user_id, time DESC) INCLUDE (tag, minutes)"
        " WHERE user_id IS NOT NULL"
    )
    op.execute("CREATE INDEX events_time_idx ON events (time DESC)")  # hypertables keep this too

    config = op.get_context().config
    assert config is not None  # always set by migrate.py
    settings = config.attributes["settings"]
    enable_timescaledb(op.get_bind(), settings)


def downgrade() -> None:
    op.execute(text("DROP TABLE events"))

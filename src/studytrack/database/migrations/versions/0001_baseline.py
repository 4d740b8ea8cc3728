"""The whole schema: events, the ids they claim, the 15-minute rollup, API tokens.

Self-contained, like every migration after it: it never imports application code, so it does the same
thing forever. TimescaleDB mode is decided before it runs (`migrations/env.py`: extension available,
preloaded, allowed by `TIMESCALEDB`) and arrives as `config.attributes["timescaledb"]`; the policies that
depend on settings are applied after every migration (`database/timescale.py`).

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = (
    # The primary key holds `time` (a hypertable's unique keys must contain it); `event_ids` makes an id
    # name one event.
    """
    CREATE TABLE events (
        id          uuid        NOT NULL,
        time        timestamptz NOT NULL,
        tag         text        NOT NULL CONSTRAINT events_tag_check CHECK (char_length(tag) BETWEEN 1 AND 64),
        minutes     integer     NOT NULL CONSTRAINT events_minutes_check CHECK (minutes BETWEEN 1 AND 1440),
        user_id     text,
        note        text        CONSTRAINT events_note_check CHECK (char_length(note) <= 1000),
        source      text,
        received_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT events_pkey PRIMARY KEY (id, time)
    )
    """,
    # Charts filter by tag or person and a time range and read only minutes: index-only scans.
    "CREATE INDEX events_tag_time_idx ON events (tag, time DESC) INCLUDE (minutes)",
    "CREATE INDEX events_user_time_idx ON events (user_id, time DESC) INCLUDE (tag, minutes) WHERE user_id IS NOT NULL",
    "CREATE INDEX events_user_tag_time_idx ON events (user_id, tag, time DESC) INCLUDE (minutes)"
    " WHERE user_id IS NOT NULL",
    "CREATE INDEX events_time_idx ON events (time DESC)",
    "CREATE TABLE event_ids (id uuid PRIMARY KEY, time timestamptz NOT NULL)",
    """
    CREATE TABLE events_15m (
        tag     text        NOT NULL,
        bucket  timestamptz NOT NULL,
        minutes bigint      NOT NULL,
        count   bigint      NOT NULL,
        CONSTRAINT events_15m_pkey PRIMARY KEY (tag, bucket) INCLUDE (minutes, count)
    )
    """,
    """
    CREATE TABLE api_tokens (
        name          text        PRIMARY KEY
                                  CONSTRAINT api_tokens_name_check CHECK (char_length(name) BETWEEN 1 AND 64),
        key_id        text        NOT NULL UNIQUE,
        secret_sha256 bytea       NOT NULL,
        scopes        text[]      NOT NULL CONSTRAINT api_tokens_scopes_check
                                  CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
        user_id       text,
        created_at    timestamptz NOT NULL DEFAULT now()
    )
    """,
)
# TimescaleDB mode: `events` partitioned by time (the interval is a setting, applied after migrating) and
# compressed into one columnstore segment per tag (charts filter by tag), ordered by person then time, so a
# person's chart skips the batches of everyone else (10M events: one tag one user 12.2 -> 3.5 ms, bench/README.md).
HYPERTABLE = "SELECT create_hypertable('events', by_range('time'), create_default_indexes => false)"
COLUMNSTORE = (
    "ALTER TABLE events SET (timescaledb.enable_columnstore = true, timescaledb.segmentby = 'tag',"
    " timescaledb.orderby = 'user_id, time DESC')"
)
COLUMNSTORE_BEFORE_2_18 = (
    "ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'tag',"
    " timescaledb.compress_orderby = 'user_id, time DESC')"
)


def upgrade() -> None:
    for statement in SCHEMA:
        op.execute(statement)
    config = op.get_context().config
    if config is None or not config.attributes.get("timescaledb"):
        return
    op.execute(HYPERTABLE)
    version = op.get_bind().exec_driver_sql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    major, minor = (int(part) for part in str(version.scalar()).split(".")[:2])
    op.execute(COLUMNSTORE if (major, minor) >= (2, 18) else COLUMNSTORE_BEFORE_2_18)


def downgrade() -> None:
    op.execute("DROP TABLE api_tokens, events_15m, event_ids, events")

"""`events_15m` is one table in both modes, kept exact by the insert statement itself.

TimescaleDB mode had a continuous aggregate here. A continuous aggregate is exact after a late write only
once the write's time range is refreshed, and a refresh recomputes every row of that range: a batch of
history spread over a year recomputed the whole year per request (batch ingest fell to ~0.02 of COPY).
The upserted table costs the same per row whatever the time, is exact when the insert commits, and gives
both modes one rollup. Its rows are copied from the aggregate (which keeps buckets that retention dropped
from the raw table); writers wait on the SHARE lock meanwhile, so no write falls between copy and swap.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_IS_VIEW = "SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('events_15m') AND relkind = 'v')"
_CREATE_TABLE = """
    CREATE TABLE events_15m_table (
        bucket  timestamptz NOT NULL,
        tag     text        NOT NULL,
        minutes bigint      NOT NULL,
        count   bigint      NOT NULL,
        CONSTRAINT events_15m_table_pkey PRIMARY KEY (tag, bucket) INCLUDE (minutes, count)
    )
"""
# The SQL of 0004 and 0005 for the continuous aggregate, kept here for the downgrade.
_CREATE_AGGREGATE = """
    CREATE MATERIALIZED VIEW events_15m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '15 minutes', time) AS bucket, tag,
           sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    GROUP BY 1, 2
    WITH NO DATA
"""


def upgrade() -> None:
    if not op.get_bind().exec_driver_sql(_IS_VIEW).scalar():
        return  # plain mode: already the table
    op.execute("LOCK TABLE events IN SHARE MODE")
    op.execute(_CREATE_TABLE)
    op.execute(
        "INSERT INTO events_15m_table (bucket, tag, minutes, count)"
        " SELECT bucket, tag, minutes, count FROM events_15m WHERE count > 0"
    )
    op.execute("DROP MATERIALIZED VIEW events_15m")  # its refresh policy goes with it
    op.execute("ALTER TABLE events_15m_table RENAME TO events_15m")
    op.execute("ALTER TABLE events_15m RENAME CONSTRAINT events_15m_table_pkey TO events_15m_pkey")


def downgrade() -> None:
    bind = op.get_bind()
    hypertable = bind.exec_driver_sql(
        "SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL"
        " AND EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events')"
    ).scalar()
    if not hypertable:
        return
    op.execute("DROP TABLE events_15m")
    with op.get_context().autocommit_block():
        op.execute(_CREATE_AGGREGATE)
        op.execute("CREATE INDEX events_15m_tag_bucket_idx ON events_15m (tag, bucket) INCLUDE (minutes, count)")
        op.execute("CALL refresh_continuous_aggregate('events_15m', NULL, now() - interval '15 minutes')")

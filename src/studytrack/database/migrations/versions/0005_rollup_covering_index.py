"""`events_15m` read by an index-only scan: (tag, bucket) with minutes and count in the index.

One tag's year is 35,040 rollup rows spread over the pages of every tag (ingest appends them in time
order); with the sums in the index a chart reads ~250 index pages instead of ~2,700 heap pages
(measured at 10M events: 15 ms -> 5 ms for the scan). Plain mode: the primary key gains INCLUDE
columns (one index, still the upsert's conflict target). TimescaleDB mode: an index on the continuous
aggregate (created on its materialized hypertable).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from alembic import op

from studytrack.database.timescale import is_hypertable

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if is_hypertable(op.get_bind()):
        op.execute("CREATE INDEX events_15m_tag_bucket_idx ON events_15m (tag, bucket) INCLUDE (minutes, count)")
        return
    op.execute(
        "ALTER TABLE events_15m DROP CONSTRAINT events_15m_pkey,"
        " ADD CONSTRAINT events_15m_pkey PRIMARY KEY (tag, bucket) INCLUDE (minutes, count)"
    )


def downgrade() -> None:
    if is_hypertable(op.get_bind()):
        op.execute("DROP INDEX events_15m_tag_bucket_idx")
        return
    op.execute(
        "ALTER TABLE events_15m DROP CONSTRAINT events_15m_pkey,"
        " ADD CONSTRAINT events_15m_pkey PRIMARY KEY (tag, bucket)"
    )

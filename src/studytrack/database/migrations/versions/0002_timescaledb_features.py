"""TimescaleDB mode only: columnstore compression and the 15-minute continuous aggregate.

Plain PostgreSQL mode has nothing to do here. The policies (compression, retention, refresh) depend on
settings and are applied after every migration by `timescale.apply_timescaledb_settings`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from studytrack.database.timescale import enable_compression, is_hypertable

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The SQL as of this revision, kept here: a migration must do the same thing forever.
# Minutes and counts per 15 minutes and tag (per-user charts read the raw table by its user indexes).
CREATE_ROLLUP = """
    CREATE MATERIALIZED VIEW IF NOT EXISTS events_15m
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(INTERVAL '15 minutes', time) AS bucket, tag,
           sum(minutes)::bigint AS minutes, count(*) AS count
    FROM events
    GROUP BY 1, 2
    WITH NO DATA
"""


def upgrade() -> None:
    bind = op.get_bind()
    if not is_hypertable(bind):
        return
    enable_compression(bind)
    # A continuous aggregate cannot be created inside a transaction block.
    with op.get_context().autocommit_block():
        op.execute(CREATE_ROLLUP)


def downgrade() -> None:
    bind = op.get_bind()
    if not is_hypertable(bind):
        return
    with op.get_context().autocommit_block():
        op.execute("DROP MATERIALIZED VIEW IF EXISTS events_15m")
    op.execute("ALTER TABLE events SET (timescaledb.compress = false)")

"""TimescaleDB mode only: columnstore compression and the 15-minute continuous aggregate.

Plain PostgreSQL mode has nothing to do here. The policies (compression, retention, refresh) depend on
settings and are applied after every migration by `timescale.apply_timescaledb_settings`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

from studytrack.database.timescale import create_continuous_aggregate, enable_compression, is_hypertable

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if not is_hypertable(bind):
        return
    enable_compression(bind)
    # A continuous aggregate cannot be created inside a transaction block.
    with op.get_context().autocommit_block():
        create_continuous_aggregate(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if not is_hypertable(bind):
        return
    with op.get_context().autocommit_block():
        op.execute("DROP MATERIALIZED VIEW IF EXISTS events_15m")
    op.execute("ALTER TABLE events SET (timescaledb.compress = false)")

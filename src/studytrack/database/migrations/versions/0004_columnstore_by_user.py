"""TimescaleDB mode: compressed chunks segmented by `user_id`, ordered by `tag, time DESC`.

Charts and totals over all users read the rollups, so the raw rows are read mostly per user: a person's chart
reads that person's segments only (bench/README.md, "Columnstore layouts"). Chunks compressed before keep
their layout until recompressed; the answers are the same either way.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BY_USER = "timescaledb.segmentby = 'user_id', timescaledb.orderby = 'tag, time DESC'"
BY_USER_BEFORE_2_18 = "timescaledb.compress_segmentby = 'user_id', timescaledb.compress_orderby = 'tag, time DESC'"
BY_TAG = "timescaledb.segmentby = 'tag', timescaledb.orderby = 'user_id, time DESC'"
BY_TAG_BEFORE_2_18 = "timescaledb.compress_segmentby = 'tag', timescaledb.compress_orderby = 'user_id, time DESC'"


def _set_layout(current: str, before_2_18: str) -> None:
    config = op.get_context().config
    if config is None or not config.attributes.get("timescaledb"):
        return
    version = op.get_bind().exec_driver_sql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    major, minor = (int(part) for part in str(version.scalar()).split(".")[:2])
    op.execute(f"ALTER TABLE events SET ({current if (major, minor) >= (2, 18) else before_2_18})")


def upgrade() -> None:
    _set_layout(BY_USER, BY_USER_BEFORE_2_18)


def downgrade() -> None:
    _set_layout(BY_TAG, BY_TAG_BEFORE_2_18)

"""TimescaleDB mode: the columnstore layout of migration 0004 again, for databases that skipped it.

Up to 0006, a migration's TimescaleDB steps ran only while the database was being created, so a TimescaleDB
database migrated past 0004 later kept segmenting new chunks by `tag`. The answers were the same; a person's
chart read more. Setting the layout again is harmless where 0004 took effect.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BY_USER = "timescaledb.segmentby = 'user_id', timescaledb.orderby = 'tag, time DESC'"
BY_USER_BEFORE_2_18 = "timescaledb.compress_segmentby = 'user_id', timescaledb.compress_orderby = 'tag, time DESC'"


def upgrade() -> None:
    config = op.get_context().config
    if config is None or not config.attributes.get("timescaledb"):
        return
    version = op.get_bind().exec_driver_sql("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    major, minor = (int(part) for part in str(version.scalar()).split(".")[:2])
    op.execute(f"ALTER TABLE events SET ({BY_USER if (major, minor) >= (2, 18) else BY_USER_BEFORE_2_18})")


def downgrade() -> None:
    pass  # 0004's layout, which this one only makes sure of

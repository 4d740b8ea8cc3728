"""The daily rollup `events_1d`, and `events_1h` and `events_15m` keyed by their bucket first.

A year of daily buckets over all users reads one row per tag and day instead of 24; where the caller's days
do not begin at UTC midnight, the hours and quarter hours between are moved with rows looked up by their
bucket, for every tag (hence the key order). Kept exact like the others by the statements that insert and
delete events; filled here from `events_1h`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key(table: str, columns: str) -> None:
    op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({columns}) INCLUDE (minutes, count)")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events_1d (
            tag     text        NOT NULL,
            bucket  timestamptz NOT NULL,
            minutes bigint      NOT NULL,
            count   bigint      NOT NULL,
            CONSTRAINT events_1d_pkey PRIMARY KEY (tag, bucket) INCLUDE (minutes, count)
        )
        """
    )
    op.execute(
        """
        INSERT INTO events_1d (tag, bucket, minutes, count)
        SELECT tag, date_bin(INTERVAL '1 day', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'), sum(minutes), sum(count)
        FROM events_1h GROUP BY 1, 2
        """
    )
    _key("events_1h", "bucket, tag")
    _key("events_15m", "bucket, tag")


def downgrade() -> None:
    _key("events_15m", "tag, bucket")
    _key("events_1h", "tag, bucket")
    op.execute("DROP TABLE events_1d")

"""The daily rollup `events_1d`, and `events_1h` keyed by the hour first.

A year of daily buckets over all users reads one row per tag and day instead of 24; where the caller's days
do not begin at UTC midnight, the hours between are moved with hourly rows looked up by their hour (hence the
key order). Kept exact like the others by the statements that insert and delete events; filled here from
`events_1h`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key_hours(columns: str) -> None:
    op.execute("ALTER TABLE events_1h DROP CONSTRAINT events_1h_pkey")
    op.execute(f"ALTER TABLE events_1h ADD CONSTRAINT events_1h_pkey PRIMARY KEY ({columns}) INCLUDE (minutes, count)")


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
    _key_hours("bucket, tag")


def downgrade() -> None:
    _key_hours("tag, bucket")
    op.execute("DROP TABLE events_1d")

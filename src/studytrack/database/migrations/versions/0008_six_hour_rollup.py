"""The six-hourly rollup `events_6h`: a chart of days in a zone far from UTC reads four rows a day, not 24.

A day there begins hours away from UTC midnight (Los Angeles 08:00Z, Tokyo 15:00Z), so the daily rollup would
move most of its hours; from six-hour rows at most three hours move. Kept exact like the others by the
statements that insert and delete events; filled here from `events_1h`, with its writers held off (a SHARE
lock) until this commits. An instance of an earlier version still writing after that (while a new deployment
starts) does not keep `events_6h`: `studytrack db rebuild-rollups` fills it again from `events_1h`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE events_6h (
            tag     text        NOT NULL,
            bucket  timestamptz NOT NULL,
            minutes bigint      NOT NULL,
            count   bigint      NOT NULL,
            CONSTRAINT events_6h_pkey PRIMARY KEY (tag, bucket) INCLUDE (minutes, count)
        )
        """
    )
    op.execute("LOCK TABLE events_1h IN SHARE MODE")
    op.execute(
        """
        INSERT INTO events_6h (tag, bucket, minutes, count)
        SELECT tag, date_bin(INTERVAL '6 hours', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'), sum(minutes), sum(count)
        FROM events_1h GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE events_6h")

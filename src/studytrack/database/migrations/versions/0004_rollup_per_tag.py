"""`events_15m`, minutes and counts per 15 minutes and tag, in both modes.

TimescaleDB mode: the continuous aggregate, now without `user_id` (per-user charts read the raw
table through its user index; per-tag charts over all users read far fewer rows this way).
Plain PostgreSQL mode: a table of the same shape, kept exact by the ingest path in the same
transaction as every insert and delete.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from alembic import op

from studytrack.database.timescale import is_hypertable

revision = "0004"
down_revision = "0003"
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
    if is_hypertable(bind):
        with op.get_context().autocommit_block():
            op.execute("DROP MATERIALIZED VIEW IF EXISTS events_15m")  # its policy goes with it
            op.execute(CREATE_ROLLUP)
            op.execute("CALL refresh_continuous_aggregate('events_15m', NULL, now() - interval '15 minutes')")
        return
    op.execute(
        """
        CREATE TABLE events_15m (
            bucket  timestamptz NOT NULL,
            tag     text        NOT NULL,
            minutes bigint      NOT NULL,
            count   bigint      NOT NULL,
            PRIMARY KEY (tag, bucket)
        )
        """
    )
    op.execute(
        """
        INSERT INTO events_15m (bucket, tag, minutes, count)
        SELECT date_bin(INTERVAL '15 minutes', time, TIMESTAMPTZ '2000-01-03 00:00:00+00'), tag, sum(minutes), count(*)
        FROM events GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    bind = op.get_bind()
    if not is_hypertable(bind):
        op.execute("DROP TABLE events_15m")

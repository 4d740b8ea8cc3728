"""The six-hourly rollup `events_6h`: a chart of days in a zone far from UTC reads four rows a day, not 24.

A day there begins hours away from UTC midnight (Los Angeles 08:00Z, Tokyo 15:00Z), so the daily rollup would
move most of its hours; from six-hour rows at most three hours move. It follows `events_1h` by statement
triggers on it, in the writing statement's transaction: every write that keeps the hourly rollup exact keeps
this one exact too, also a write by an instance of an earlier version still serving while a new one starts
(Railway runs the migration before it stops the old deployment). Filled here from `events_1h` with its writers
held off (SHARE lock) until the triggers are in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SIX_HOURS = "date_bin(INTERVAL '6 hours', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00')"
# Each trigger adds what its statement changed in `events_1h` (`changes`: tag, bucket, minutes, count), per six
# hours, in key order (so concurrent writers lock rows in one order). An update adds its new rows and takes its
# old ones away, without joining them: PL/pgSQL keeps the plan made for the first statement's transition
# tables, and a join planned for one row each would be quadratic for a batch's thousands.
_FOLLOW = """
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO events_6h AS r (tag, bucket, minutes, count)
        SELECT tag, {six_hours}, sum(minutes), sum(count) FROM ({changes}) AS changes
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (tag, bucket) DO UPDATE
            SET minutes = r.minutes + excluded.minutes, count = r.count + excluded.count;
        RETURN NULL;
    END
    $$
"""
_TRIGGERS = {
    "INSERT": ("NEW TABLE AS new_hours", "SELECT tag, bucket, minutes, count FROM new_hours"),
    "UPDATE": (
        "OLD TABLE AS old_hours NEW TABLE AS new_hours",
        "SELECT tag, bucket, minutes, count FROM new_hours"
        " UNION ALL SELECT tag, bucket, -minutes, -count FROM old_hours",
    ),
    "DELETE": ("OLD TABLE AS old_hours", "SELECT tag, bucket, -minutes AS minutes, -count AS count FROM old_hours"),
}


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
        f"""
        INSERT INTO events_6h (tag, bucket, minutes, count)
        SELECT tag, {_SIX_HOURS}, sum(minutes), sum(count) FROM events_1h GROUP BY 1, 2
        """
    )
    for event, (transition, changes) in _TRIGGERS.items():
        function = f"studytrack_events_6h_after_{event.lower()}"
        op.execute(_FOLLOW.format(function=function, six_hours=_SIX_HOURS, changes=changes))
        op.execute(
            f"CREATE TRIGGER events_6h_after_{event.lower()} AFTER {event} ON events_1h REFERENCING {transition}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER events_6h_after_{event.lower()} ON events_1h")
        op.execute(f"DROP FUNCTION studytrack_events_6h_after_{event.lower()}()")
    op.execute("DROP TABLE events_6h")

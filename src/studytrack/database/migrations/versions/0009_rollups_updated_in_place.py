"""The rollups updated in place: keys without the sums, and room on every page for a row's next version.

Every event written updates a row in each rollup. With the sums in the key's index (`INCLUDE`, since 0005)
each update also wrote a new index entry; with a key of the bucket and tag alone, and pages filled to 70%,
PostgreSQL updates the row on its own page without touching the index (a heap-only tuple). A batch's
statement costs 13-16% less (bench/README.md, "Rollups updated in place"); a chart reads the few rows
it needs from the table beside the index. The tables are not rewritten: a row on a page filled before this
moves once, at its next update, to a page with room. Rebuilding each key locks its table: writers and charts
wait, about 0.3 s per year of ten tags with every quarter hour filled.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEYS = {"events_15m": "bucket, tag", "events_1h": "bucket, tag", "events_6h": "tag, bucket", "events_1d": "tag, bucket"}
FILLFACTOR = 70


def upgrade() -> None:
    for table, key in KEYS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")
        op.execute(f"ALTER TABLE {table} SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    for table, key in KEYS.items():
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key}) INCLUDE (minutes, count)")
        op.execute(f"ALTER TABLE {table} RESET (fillfactor)")

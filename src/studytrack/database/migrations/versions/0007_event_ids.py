"""An id names one event, forever: `event_ids (id PRIMARY KEY, time)`, one row per stored event.

The events hypertable's unique keys must contain `time`, so `(id, time)` cannot stop one id from naming two
events at two times (or for two users). This ordinary table can: every insert claims its ids here in the same
statement (`ON CONFLICT (id) DO NOTHING`), and only the claimed rows reach `events`. Existing data: each id
keeps its earliest row; a later row of a reused id stays stored but its id now names the earliest one.
The same in plain PostgreSQL and TimescaleDB mode (an ordinary table in both).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE event_ids (id uuid PRIMARY KEY, time timestamptz NOT NULL)")
    op.execute("INSERT INTO event_ids (id, time) SELECT DISTINCT ON (id) id, time FROM events ORDER BY id, time")


def downgrade() -> None:
    op.execute("DROP TABLE event_ids")

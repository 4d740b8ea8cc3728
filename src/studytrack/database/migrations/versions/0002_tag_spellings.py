"""How people spell each tag: `events.tag` is the case-insensitive key, `tag_spellings` the first spelling seen.

Tags stored before it were lower-cased: that stays their spelling. A spelling, once stored, never changes
(the first seen wins), so answers do not flip between spellings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE tag_spellings (
            tag      text NOT NULL CONSTRAINT tag_spellings_pkey PRIMARY KEY,
            spelling text NOT NULL
                     CONSTRAINT tag_spellings_spelling_check CHECK (char_length(spelling) BETWEEN 1 AND 64)
        )
        """
    )
    op.execute("INSERT INTO tag_spellings (tag, spelling) SELECT DISTINCT tag, tag FROM events")


def downgrade() -> None:
    op.execute("DROP TABLE tag_spellings")

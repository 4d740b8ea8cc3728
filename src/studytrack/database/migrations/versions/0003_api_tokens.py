"""API tokens: only a SHA-256 of each secret is stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_tokens (
            name          text        PRIMARY KEY CHECK (char_length(name) BETWEEN 1 AND 64),
            key_id        text        NOT NULL UNIQUE,
            secret_sha256 bytea       NOT NULL,
            scopes        text[]      NOT NULL
                          CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'admin']),
            user_id       text,
            created_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_tokens")

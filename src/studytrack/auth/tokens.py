"""Token secrets and their storage.

A token reads `st_<key id>_<secret>`. The key id (public, indexed) finds the row; the secret is
compared as a SHA-256 digest in constant time. Secrets are 256 random bits, so a fast hash is
enough: there is nothing to brute-force. Secrets are shown once, at creation, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from pydantic import TypeAdapter

from studytrack.events.models import Label

SCOPES = ("ingest", "read", "admin")
PREFIX = "st_"
_USER_ID = TypeAdapter(Label)  # the rule for user ids everywhere: trimmed, 1-128 characters, one line


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, scopes and (for a per-user token) its user."""

    name: str
    scopes: frozenset[str]
    user_id: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


@dataclass(frozen=True)
class TokenInfo:
    name: str
    scopes: list[str]
    user_id: str | None
    created_at: datetime


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret), or None for anything that is not one of our tokens."""
    if not token.startswith(PREFIX):
        return None
    key_id, _, secret = token[len(PREFIX) :].partition("_")
    if not key_id or not secret or not key_id.isalnum() or len(key_id) > 32 or len(secret) > 128:
        return None
    return key_id, secret


async def create_token(conn: AsyncConnection[Any], *, name: str, scopes: list[str], user_id: str | None = None) -> str:
    """Store a new token and return its secret (the only time it exists in clear). A `user_id` is checked as the
    API checks one (pydantic.ValidationError): an empty one would look unbound and read everything."""
    if user_id is not None:
        user_id = _USER_ID.validate_python(user_id)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_tokens (name, key_id, secret_sha256, scopes, user_id) VALUES (%s, %s, %s, %s, %s)",
        (name, key_id, _digest(secret), sorted(set(scopes)), user_id),
    )
    return f"{PREFIX}{key_id}_{secret}"


# Insert or replace the named token; an unchanged one is left alone (no write, same created_at).
# RETURNING answers nothing when unchanged, else whether the row is new (xmax = 0).
UPSERT_TOKEN_SQL = """
INSERT INTO api_tokens (name, key_id, secret_sha256, scopes) VALUES (%s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE
   SET key_id = EXCLUDED.key_id, secret_sha256 = EXCLUDED.secret_sha256, scopes = EXCLUDED.scopes,
       user_id = NULL, created_at = now()
 WHERE (api_tokens.key_id, api_tokens.secret_sha256, api_tokens.scopes, api_tokens.user_id)
       IS DISTINCT FROM (EXCLUDED.key_id, EXCLUDED.secret_sha256, EXCLUDED.scopes, NULL)
RETURNING xmax = 0
"""  # noqa: S105  (SQL, not a secret)


async def put_token(conn: AsyncConnection[Any], *, name: str, token: str, scopes: list[str]) -> str:
    """Store a secret chosen elsewhere under `name`: "created", "replaced" or "unchanged".

    Several processes doing it at once leave exactly one row. They take turns: ON CONFLICT arbitrates only on
    `name`, so two concurrent inserts of one secret would otherwise collide on the `key_id` index."""
    parts = split_token(token)
    if parts is None:
        raise ValueError("not a studytrack token")
    key_id, secret = parts
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('api_tokens'), hashtext(%s))", (name,))
        cur = await conn.execute(UPSERT_TOKEN_SQL, (name, key_id, _digest(secret), sorted(set(scopes))))
        row = await cur.fetchone()
    if row is None:
        return "unchanged"
    return "created" if row[0] else "replaced"


async def verify_token(conn: AsyncConnection[Any], token: str) -> Principal | None:
    parts = split_token(token)
    if parts is None:
        return None
    key_id, secret = parts
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT name, secret_sha256, scopes, user_id FROM api_tokens WHERE key_id = %s", (key_id,))
        row = await cur.fetchone()
    if row is None or not hmac.compare_digest(bytes(row["secret_sha256"]), _digest(secret)):
        return None
    return Principal(name=row["name"], scopes=frozenset(row["scopes"]), user_id=row["user_id"])


async def list_tokens(conn: AsyncConnection[Any]) -> list[TokenInfo]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT name, scopes, user_id, created_at FROM api_tokens ORDER BY name")
        return [TokenInfo(**row) for row in await cur.fetchall()]


async def revoke_token(conn: AsyncConnection[Any], *, name: str) -> bool:
    cur = await conn.execute("DELETE FROM api_tokens WHERE name = %s", (name,))
    return cur.rowcount > 0

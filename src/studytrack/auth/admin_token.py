"""The first admin token: ADMIN_TOKEN, and the embedded default's own (made on its first start, kept in a file)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, errors

from studytrack.auth.tokens import create_token, put_token, revoke_token
from studytrack.config import Settings, SettingsError

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105  (a file name, not a secret)
LOCAL_ADMIN = "local-admin"
ENV_ADMIN = "ADMIN_TOKEN"  # the stored token's name: where it came from, in `token list`


async def with_connection(url: str, action: Callable[[AsyncConnection[Any]], Any]) -> Any:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        return await action(conn)


def ensure_local_admin_token(url: str, home: Path) -> None:
    """First start of the embedded default: make an admin token, print it once, keep it for the owner only.

    The CLI and notebooks on this machine read it from `STUDYTRACK_HOME/admin-token` (as Jupyter does).
    """
    path = home / ADMIN_TOKEN_FILE
    if path.exists():
        log.info("admin token for this home is in %s", path)
        return

    async def make(conn: AsyncConnection[Any]) -> str:
        await revoke_token(conn, name=LOCAL_ADMIN)  # its file was deleted: replace it
        return await create_token(conn, name=LOCAL_ADMIN, scopes=["admin"])

    token = asyncio.run(with_connection(url, make))
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(token + "\n")
    _announce_local_admin_token(path, token)


def _announce_local_admin_token(path: Path, token: str) -> None:
    """Show the secret only on a terminal: a redirected stdout usually ends up in a log file."""
    if sys.stdout.isatty():
        print(f"Created an admin API token (kept in {path}, readable by you only):\n{token}", flush=True)
    else:
        print(f"Created an admin API token: it is in {path} (readable by you only)", flush=True)


def apply_admin_token(url: str, settings: Settings) -> None:
    """ADMIN_TOKEN, when set, becomes the admin token named ADMIN_TOKEN (a new value replaces the old).

    Idempotent, and safe when several replicas start at once. The value is never printed or logged."""
    token = settings.admin_token
    if token is None:
        return

    async def put(conn: AsyncConnection[Any]) -> str:
        return await put_token(conn, name=ENV_ADMIN, token=token, scopes=["admin"])

    try:
        outcome = asyncio.run(with_connection(url, put))
    except errors.UniqueViolation:
        # `from None`: psycopg's message quotes the key id, a part of the token.
        raise SettingsError("setting ADMIN_TOKEN: another token has the same key id; generate a new value") from None
    log.info("admin token %r from ADMIN_TOKEN: %s", ENV_ADMIN, outcome)

"""`studytrack token create | list | revoke`, and the embedded default's first admin token."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, errors

from studytrack.auth.tokens import SCOPES, create_token, list_tokens, put_token, revoke_token
from studytrack.config import Settings, SettingsError
from studytrack.datacli import label_argument

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105  (a file name, not a secret)
LOCAL_ADMIN = "local-admin"
ENV_ADMIN = "ADMIN_TOKEN"  # the stored token's name: where it came from, in `token list`


async def _with_connection(url: str, action: Callable[[AsyncConnection[Any]], Any]) -> Any:
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

    token = asyncio.run(_with_connection(url, make))
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
        outcome = asyncio.run(_with_connection(url, put))
    except errors.UniqueViolation:
        # `from None`: psycopg's message quotes the key id, a part of the token.
        raise SettingsError("setting ADMIN_TOKEN: another token has the same key id; generate a new value") from None
    log.info("admin token %r from ADMIN_TOKEN: %s", ENV_ADMIN, outcome)


def cmd_token_create(url: str, args: argparse.Namespace) -> int:
    async def create(conn: AsyncConnection[Any]) -> str:
        return await create_token(conn, name=args.name, scopes=args.scope, user_id=args.user_id)

    try:
        token = asyncio.run(_with_connection(url, create))
    except errors.UniqueViolation:
        print(f"studytrack: a token named {args.name!r} exists; revoke it first or pick another name")
        return 1
    bound = f" for user {args.user_id}" if args.user_id else ""
    print(f"Token {args.name!r} ({', '.join(sorted(set(args.scope)))}{bound}). Shown once; store it now:")
    print(token)
    return 0


def cmd_token_list(url: str, args: argparse.Namespace) -> int:
    tokens = asyncio.run(_with_connection(url, list_tokens))
    for token in tokens:
        user = token.user_id or "(all users)"
        print(f"{token.name:<24} {','.join(token.scopes):<20} {user:<20} {token.created_at:%Y-%m-%d %H:%M}")
    if not tokens:
        print("no tokens")
    return 0


def cmd_token_revoke(url: str, args: argparse.Namespace) -> int:
    async def revoke(conn: AsyncConnection[Any]) -> bool:
        return await revoke_token(conn, name=args.name)

    if not asyncio.run(_with_connection(url, revoke)):
        print(f"studytrack: no token named {args.name!r}")
        return 1
    print(f"revoked {args.name!r} (running servers stop accepting it within 30 seconds)")
    return 0


def add_token_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="create, list and revoke API tokens")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="create a token; its secret is printed once, on the last line")
    create.add_argument("--name", required=True, help="a name to list and revoke it by")
    create.add_argument("--scope", required=True, action="append", choices=SCOPES, help="repeat for several")
    create.add_argument(
        "--user-id", type=label_argument, help="bind the token to this user: it reads and writes only their events"
    )
    create.set_defaults(token_handler=cmd_token_create)
    actions.add_parser("list", help="list tokens (never their secrets)").set_defaults(token_handler=cmd_token_list)
    revoke = actions.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    revoke.set_defaults(token_handler=cmd_token_revoke)

"""`studytrack token create | list | revoke`: API tokens, on the configured (or embedded) database."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from psycopg import AsyncConnection, errors

from studytrack.auth.admin_token import with_connection
from studytrack.auth.tokens import SCOPES, create_token, list_tokens, revoke_token
from studytrack.cli.data import label_argument
from studytrack.cli.database import configured_or_embedded_database
from studytrack.config import Settings
from studytrack.database.migrate import run_migrations


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    with configured_or_embedded_database(settings) as url:
        run_migrations(url, settings)
        return int(args.token_handler(url, args))


def cmd_token_create(url: str, args: argparse.Namespace) -> int:
    async def create(conn: AsyncConnection[Any]) -> str:
        return await create_token(conn, name=args.name, scopes=args.scope, user_id=args.user_id)

    try:
        token = asyncio.run(with_connection(url, create))
    except errors.UniqueViolation:
        print(f"studytrack: a token named {args.name!r} exists; revoke it first or pick another name")
        return 1
    bound = f" for user {args.user_id}" if args.user_id else ""
    print(f"Token {args.name!r} ({', '.join(sorted(set(args.scope)))}{bound}). Shown once; store it now:")
    print(token)
    return 0


def cmd_token_list(url: str, args: argparse.Namespace) -> int:
    tokens = asyncio.run(with_connection(url, list_tokens))
    for token in tokens:
        user = token.user_id or "(all users)"
        print(f"{token.name:<24} {','.join(token.scopes):<20} {user:<20} {token.created_at:%Y-%m-%d %H:%M}")
    if not tokens:
        print("no tokens")
    return 0


def cmd_token_revoke(url: str, args: argparse.Namespace) -> int:
    async def revoke(conn: AsyncConnection[Any]) -> bool:
        return await revoke_token(conn, name=args.name)

    if not asyncio.run(with_connection(url, revoke)):
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
    token.set_defaults(handler=cmd_token)

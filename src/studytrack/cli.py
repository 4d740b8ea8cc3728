"""`studytrack`: serve the API (on the embedded database by default) and manage the schema."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection

from studytrack import __version__
from studytrack.auth.cli import add_token_commands, apply_admin_token, ensure_local_admin_token
from studytrack.config import Settings, SettingsError, get_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.mode import detect_mode
from studytrack.database.status import event_totals, timescale_status
from studytrack.database.timescaledb_build import DEFAULT_SOURCE
from studytrack.datacli import add_data_commands
from studytrack.logs import configure_logging

log = logging.getLogger("studytrack")


def _database_url(settings: Settings) -> tuple[str, Any]:
    """The configured database, or the embedded one under STUDYTRACK_HOME (handle to stop it)."""
    if settings.database_url is not None:
        return settings.database_url, None
    server, url = start_embedded_database(settings.studytrack_home, timescaledb=settings.timescaledb != "off")
    return url, server


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    url, server = _database_url(settings)
    try:
        run_migrations(url, settings)
        apply_admin_token(url, settings)
    finally:
        if server is not None:
            stop_embedded_database(server)
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from studytrack.web.server import run_gunicorn

    url, server = _database_url(settings)
    try:
        run_migrations(url, settings)
        apply_admin_token(url, settings)
        if server is not None and not settings.auth_disabled:
            ensure_local_admin_token(url, settings.studytrack_home)
        run_gunicorn(database_url=url, host=args.host, port=args.port or settings.port, workers=args.workers or 1)
    finally:
        if server is not None:
            log.info("stopping embedded PostgreSQL")
            stop_embedded_database(server)
    return 0


async def _database_status(url: str) -> dict[str, Any]:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        mode = await detect_mode(conn)
        status: dict[str, Any] = {
            "mode": mode.name,
            "postgresql": mode.server_version,
            "timescaledb": mode.timescaledb_version,
        }
        status |= (await event_totals(conn)).model_dump()
        if mode.is_timescaledb:
            status |= (await timescale_status(conn)).model_dump()
        status["rollup"] = "events_15m" if mode.rollup else None
    return status


def cmd_db_status(settings: Settings, args: argparse.Namespace) -> int:
    url, server = _database_url(settings)
    try:
        status = asyncio.run(_database_status(url))
    finally:
        if server is not None:
            stop_embedded_database(server)
    if args.json:
        print(json.dumps(status, default=str, indent=2))
    else:
        for key, value in status.items():
            print(f"{key + ':':<26}{'-' if value is None else value}")
    return 0


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    url, server = _database_url(settings)
    try:
        run_migrations(url, settings)
        return int(args.token_handler(url, args))
    finally:
        if server is not None:
            stop_embedded_database(server)


def cmd_timescaledb_install(settings: Settings, args: argparse.Namespace) -> int:
    from studytrack.database import timescaledb_build

    if timescaledb_build.is_installed() and not args.force:
        version, prefix = timescaledb_build.TIMESCALEDB_VERSION, timescaledb_build.pginstall()
        print(f"TimescaleDB {version} is already installed in {prefix}")
        return 0
    try:
        source = args.source or settings.timescaledb_source or timescaledb_build.DEFAULT_SOURCE
        timescaledb_build.install(source, progress=lambda line: print(line, flush=True))
    except timescaledb_build.TimescaleDBInstallError as exc:
        print(f"studytrack timescaledb install: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studytrack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"studytrack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate, then serve the API with gunicorn + Uvicorn workers")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT, 8000)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--workers", type=int, help="worker processes (default: 1)")
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.set_defaults(handler=cmd_migrate)

    database = commands.add_parser("db", help="inspect the database").add_subparsers(dest="db_command", required=True)
    status = database.add_parser("status", help="mode, versions, events, chunks, compression")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_db_status)
    add_data_commands(commands)

    timescaledb = commands.add_parser("timescaledb", help="the TimescaleDB extension of the embedded PostgreSQL")
    actions = timescaledb.add_subparsers(dest="timescaledb_command", required=True)
    install = actions.add_parser("install", help="build the pinned TimescaleDB into the embedded PostgreSQL (cached)")
    install.add_argument(
        "--source",
        help=f"the source tarball (path or URL) or directory (default: TIMESCALEDB_SOURCE, else {DEFAULT_SOURCE})",
    )
    install.add_argument("--force", action="store_true", help="install again even if it is installed")
    install.set_defaults(handler=cmd_timescaledb_install)

    add_token_commands(commands)
    commands.choices["token"].set_defaults(handler=cmd_token)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"studytrack: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return int(args.handler(settings, args))
    except SettingsError as exc:  # a setting only the database can refute (ADMIN_TOKEN's key id)
        print(f"studytrack: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

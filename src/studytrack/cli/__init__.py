"""`studytrack`: serve the API (on the embedded database by default) and manage the schema."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from studytrack import __version__
from studytrack.cli.data import add_data_commands
from studytrack.cli.schema import (
    cmd_db_rebuild_rollups,
    cmd_db_status,
    cmd_db_wait,
    cmd_migrate,
    cmd_timescaledb_install,
)
from studytrack.cli.serve import cmd_serve
from studytrack.cli.tokens import add_token_commands
from studytrack.config import SettingsError, get_settings
from studytrack.database.timescaledb_build import DEFAULT_SOURCE
from studytrack.logs import configure_logging


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
    migrate.add_argument(
        "--check", action="store_true", help="migrate, then fail unless the schema matches the table models"
    )
    migrate.set_defaults(handler=cmd_migrate)

    database = commands.add_parser("db", help="inspect the database").add_subparsers(dest="db_command", required=True)
    status = database.add_parser("status", help="mode, versions, events, chunks, compression")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_db_status)
    wait = database.add_parser("wait", help="wait for the configured database (DATABASE_URL) to take connections")
    wait.add_argument("--seconds", type=int, default=60, help="give up after this long (default 60)")
    wait.set_defaults(handler=cmd_db_wait)
    rebuild = database.add_parser(
        "rebuild-rollups",
        help="make the six-hourly and daily rollups again from the hourly one (after an upgrade with old writers)",
    )
    rebuild.set_defaults(handler=cmd_db_rebuild_rollups)
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

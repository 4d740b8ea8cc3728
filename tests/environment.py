"""The environment variables that change how the service, its CLI or its boot scripts behave.

Tests that start the service (or read settings) clear them first, so that a developer's or CI's
environment cannot change what a test sees.
"""

from __future__ import annotations

import os

SERVICE_SETTINGS = (
    # studytrack.config
    "ADMIN_TOKEN",
    "AUTH_DISABLED",
    "CHUNK_TIME_INTERVAL_DAYS",
    "COMPRESS_AFTER_DAYS",
    "CORS_ORIGINS",
    "DATABASE_REPLICA_URL",
    "DATABASE_URL",
    "DB_POOL_SIZE",
    "DB_TIMEOUT_SECONDS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_BODY_BYTES",
    "MAX_BUCKETS",
    "PORT",
    "POSTGRES_DB",
    "POSTGRES_HOST",
    "POSTGRES_REPLICA_HOST",
    "POSTGRES_PASSWORD",
    "POSTGRES_PORT",
    "POSTGRES_USER",
    "PUBLIC_BADGES",
    "REPLICA_MAX_LAG_SECONDS",
    "RETENTION_DAYS",
    "STUDYTRACK_HOME",
    "TIMESCALEDB",
    "TIMESCALEDB_SOURCE",
    "WEB_CONCURRENCY",
    # boot scripts, gunicorn, metrics and tracing
    "DB_WAIT_SECONDS",
    "GRACEFUL_TIMEOUT",
    "GUNICORN_CMD_ARGS",
    "PROMETHEUS_MULTIPROC_DIR",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def clean_environ(**settings: str) -> dict[str, str]:
    """This process's environment without any service setting, plus `settings`."""
    env = {key: value for key, value in os.environ.items() if key not in SERVICE_SETTINGS}
    env.update(settings)
    return env

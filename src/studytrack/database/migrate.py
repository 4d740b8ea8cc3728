"""Apply the versioned schema (Alembic) and the TimescaleDB settings. The only way the schema is made."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, pool

from studytrack.config import Settings
from studytrack.database.timescale import apply_timescaledb_settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK_ID = 0x57D7_7AC4  # pg_advisory_lock key shared by every migrator


def sqlalchemy_url(url: str) -> str:
    """SQLAlchemy spells the psycopg 3 driver into the scheme."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def alembic_config(url: str, settings: Settings) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["url"] = url
    config.attributes["settings"] = settings
    return config


def run_migrations(url: str, settings: Settings) -> None:
    """Upgrade to the newest revision; safe to run from several processes at once."""
    command.upgrade(alembic_config(url, settings), "head")
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            apply_timescaledb_settings(connection, settings)
    finally:
        engine.dispose()
    log.info("database schema is up to date")

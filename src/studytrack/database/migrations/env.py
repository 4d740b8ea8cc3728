"""Alembic environment: one migrator at a time (advisory lock), settings passed in by `migrate.py`."""

from alembic import context
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool, text
from sqlmodel import SQLModel

import studytrack.database.tables  # noqa: F401  (registers the tables: `migrate --check` compares them)
from studytrack.database.migrate import MIGRATION_LOCK_ID, sqlalchemy_url
from studytrack.database.timescale import enable_timescaledb, is_hypertable

config = context.config
engine = create_engine(sqlalchemy_url(config.attributes["url"]), poolclass=pool.NullPool)

with engine.connect() as connection:
    # Several processes may start together (workers, replicas): the first migrates, the rest wait
    # here and then find nothing left to do.
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
    connection.commit()
    try:
        settings = config.attributes.get("settings")
        if MigrationContext.configure(connection).get_current_revision() is not None:
            # Decided when the database was made: a later migration's TimescaleDB steps follow the hypertable.
            config.attributes["timescaledb"] = is_hypertable(connection)
            connection.commit()
        elif settings is not None:
            # A new database: TimescaleDB mode is decided once, here; the baseline builds on the answer.
            config.attributes["timescaledb"] = enable_timescaledb(connection, settings) is not None
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()

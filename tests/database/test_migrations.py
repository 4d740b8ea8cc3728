"""The schema is made one way: versioned migrations, safe to run again and from several processes."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import studytrack.events.models  # noqa: F401  (registers the table)
from studytrack.config import Settings
from studytrack.database.migrate import run_migrations, sqlalchemy_url
from studytrack.database.timescale import TimescaleDBError
from tests.conftest import create_database

HEAD = "0008"  # the newest migration


@pytest.fixture(scope="module")
def plain_url(server_url: str, settings: Settings) -> str:
    url = create_database(server_url, "migrations")
    run_migrations(url, settings)
    return url


def test_the_migrated_schema_matches_the_table_model(plain_url: str) -> None:
    engine = create_engine(sqlalchemy_url(plain_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    # Indexes exist only in the migration (the model does not declare them): compare columns and keys.
    # api_tokens and the events_15m rollup have no SQLModel model: only their migrations know them.
    relevant = [
        d
        for d in differences
        if d[0] != "remove_index" and not (d[0] == "remove_table" and d[1].name in ("api_tokens", "events_15m"))
    ]
    assert relevant == []


def test_the_rollup_is_read_by_an_index_only_scan(plain_url: str) -> None:
    with psycopg.connect(plain_url) as db:
        db.execute("SET enable_seqscan = off")
        db.execute("SET enable_bitmapscan = off")
        plan = db.execute(
            "EXPLAIN SELECT bucket, minutes, count FROM events_15m WHERE tag = 'cka' AND bucket >= now()"
        ).fetchall()
    assert "Index Only Scan" in plan[0][0]


def test_migrating_again_changes_nothing(plain_url: str, settings: Settings) -> None:
    run_migrations(plain_url, settings)
    with psycopg.connect(plain_url) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_migrators_started_together_migrate_exactly_once(server_url: str) -> None:
    # Separate processes, as when several containers or boot scripts start at once.
    url = create_database(server_url, "concurrent_migrate")
    env = os.environ | {"DATABASE_URL": url}
    migrators = [
        subprocess.Popen([sys.executable, "-m", "studytrack", "migrate"], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    logs = [migrator.communicate(timeout=120)[1] for migrator in migrators]
    assert [migrator.returncode for migrator in migrators] == [0, 0, 0, 0], logs
    assert sum(log.count("Running upgrade  -> 0001") for log in logs) == 1
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events' ORDER BY 1").fetchall()
    assert [name for (name,) in indexes] == [
        "events_pkey",
        "events_tag_time_idx",
        "events_time_idx",
        "events_user_tag_time_idx",
        "events_user_time_idx",
    ]


def test_plain_postgresql_mode_when_timescaledb_is_missing(plain_url: str) -> None:
    with psycopg.connect(plain_url) as db:
        assert db.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (0,)
        columns = db.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
            " WHERE table_name = 'events' ORDER BY ordinal_position"
        ).fetchall()
    assert columns == [
        ("id", "uuid", "NO"),
        ("time", "timestamp with time zone", "NO"),
        ("tag", "text", "NO"),
        ("minutes", "integer", "NO"),
        ("user_id", "text", "YES"),
        ("note", "text", "YES"),
        ("source", "text", "YES"),
        ("received_at", "timestamp with time zone", "NO"),
    ]


def test_timescaledb_installed_but_not_preloaded_serves_in_plain_mode_with_one_log_line(
    server_url: str, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The plain test server has the extension's files (tests/run.sh installed them) but does not preload it.
    url = create_database(server_url, "not_preloaded")
    with caplog.at_level("WARNING", logger="studytrack"):
        run_migrations(url, dataclasses.replace(settings, timescaledb="auto"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "plain PostgreSQL mode" in warnings[0]
    assert "preload" in warnings[0]
    with psycopg.connect(url) as db:
        assert db.execute("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (0,)


def test_timescaledb_required_without_it_preloaded_refuses_to_start_and_says_why(
    server_url: str, settings: Settings
) -> None:
    url = create_database(server_url, "required_not_preloaded")
    with pytest.raises(TimescaleDBError, match="preload"):
        run_migrations(url, dataclasses.replace(settings, timescaledb="required"))

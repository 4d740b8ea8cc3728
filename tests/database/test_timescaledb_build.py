"""`studytrack timescaledb install`: one clear message for what is missing; a second install takes the cache."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg

from studytrack.database.timescaledb_build import TIMESCALEDB_VERSION, cache_directory
from tests.databases import create_database
from tests.environment import clean_environ


def install(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studytrack", "timescaledb", "install", "--force", *args],
        env=clean_environ(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_source_is_one_message_saying_where_to_point_source(tmp_path: Path) -> None:
    result = install("--source", str(tmp_path / "nowhere.tar.gz"), XDG_CACHE_HOME=str(tmp_path))
    assert result.returncode == 1
    assert "no TimescaleDB source at" in result.stderr
    assert "pass --source" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_source_url_is_one_message_saying_where_to_point_source(tmp_path: Path) -> None:
    result = install("--source", "http://127.0.0.1:9/timescaledb.tar.gz", XDG_CACHE_HOME=str(tmp_path))
    assert result.returncode == 1
    assert "cannot download http://127.0.0.1:9/timescaledb.tar.gz" in result.stderr
    assert "pass --source" in result.stderr


def test_missing_build_tools_are_named_with_how_to_install_them(tmp_path: Path) -> None:
    result = install("--source", str(tmp_path), XDG_CACHE_HOME=str(tmp_path), PATH=str(tmp_path))
    assert result.returncode == 1
    assert "needs cmake, make, cc on PATH" in result.stderr
    assert "apt-get install cmake gcc make" in result.stderr


def test_a_second_install_copies_the_cached_build_in_seconds_and_running_servers_keep_serving(
    timescaledb_server_url: str,
) -> None:
    url = create_database(timescaledb_server_url, "reinstall")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
    assert (cache_directory() / "lib" / f"timescaledb-{TIMESCALEDB_VERSION}.so").is_file(), "tests/run.sh built it"
    started = time.monotonic()
    result = install()
    assert result.returncode == 0, result.stderr
    assert "built earlier on this machine" in result.stdout
    assert time.monotonic() - started < 30
    with psycopg.connect(url, autocommit=True) as conn:  # a library overwritten in place would have crashed it
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone() == (
            TIMESCALEDB_VERSION,
        )
        conn.execute("SELECT time_bucket('1 day', now())")

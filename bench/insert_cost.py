"""What a change to the insert statement costs per write: the plain-mode statement of an earlier commit
against the working tree's, interleaved, on one fresh embedded PostgreSQL database. About 30 s.

    .venv/bin/python -m bench.insert_cost --before COMMIT
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import psycopg
from psycopg import AsyncConnection

from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.events import ingest, queries

SINGLES, BATCHES, BATCH = 2000, 10, 1000


def _queries_before(directory: Path, commit: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:src/studytrack/events/queries.py"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    path = directory / "queries_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("queries_before", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _events(count: int, start: datetime) -> list[ingest.NewEvent]:
    return [
        ingest.NewEvent(uuid.uuid4(), start + timedelta(seconds=i), "cka", 25, "u1", None, "bench")
        for i in range(count)
    ]


async def _measure(url: str, statement: str, label: str, start: datetime) -> None:
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        singles = _events(SINGLES, start)
        began = time.perf_counter()
        for event in singles:
            await conn.execute(statement, ingest._columns([event]))
        single = (time.perf_counter() - began) / SINGLES * 1e6
        batches = [_events(BATCH, start + timedelta(hours=1 + n)) for n in range(BATCHES)]
        began = time.perf_counter()
        for batch in batches:
            await conn.execute(statement, ingest._columns(batch))
        per_event = (time.perf_counter() - began) / (BATCHES * BATCH) * 1e6
    print(f"{label:<26} single-event statement {single:7.1f} us   1,000-event batch {per_event:5.1f} us/event")


async def _compare(url: str, before: ModuleType) -> None:
    for run in range(2):  # interleaved, twice: the machine's speed drifts
        day = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=10 * run)
        await _measure(url, before.INSERT_EVENTS_AND_ROLLUP, f"before #{run + 1}", day)
        await _measure(url, queries.INSERT_EVENTS_AND_ROLLUP, f"after #{run + 1}", day + timedelta(days=5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", required=True, help="the commit whose insert statement is the baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        before = _queries_before(Path(home), args.before)
        server, server_url = start_embedded_database(Path(home) / "db")
        try:
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute("CREATE DATABASE insert_cost")
            url = server_url.replace("/postgres?", "/insert_cost?")
            run_migrations(url, dataclasses.replace(load_settings(Path(".env")), timescaledb="off"))
            asyncio.run(_compare(url, before))
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

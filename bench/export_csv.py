"""`studytrack export --format csv`: PostgreSQL's `COPY (SELECT ...) TO STDOUT (FORMAT csv)` (what it does)
against a Python writer producing the same file (a server-side cursor and the csv module, as it did before).

`python -m bench.export_csv [--events N]`; figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import hashlib
import io
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.run import bulk_load
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.events.csvcells import safe_cell
from studytrack.events.params import EventFilters
from studytrack.events.raw_export import COLUMNS, copy_csv, stream_events


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_cell(value)
    return value.isoformat() if isinstance(value, datetime) else value


async def write_csv(rows: Any, out: io.StringIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    async for row in rows:
        writer.writerow(_cell(value) for value in row)
        count += 1
    return count


async def python_writer(url: str) -> tuple[float, str]:
    out = io.StringIO()
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        count = await write_csv(stream_events(conn, EventFilters()), out)
    seconds = time.perf_counter() - started
    return count / seconds, hashlib.sha256(out.getvalue().encode()).hexdigest()


async def copy_writer(url: str, count: int) -> tuple[float, str]:
    out = io.BytesIO()
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SET TimeZone = 'UTC'")
        await copy_csv(conn, EventFilters(), out)
    seconds = time.perf_counter() - started
    return count / seconds, hashlib.sha256(out.getvalue()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), timescaledb="off", database_url=None)
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home))
        try:
            run_migrations(url, settings)
            bulk_load(url, args.events, seed=1)
            for _ in range(2):
                python_rate, python_digest = asyncio.run(python_writer(url))
                copy_rate, copy_digest = asyncio.run(copy_writer(url, args.events))
                same = "the same bytes" if python_digest == copy_digest else "DIFFERENT bytes"
                ratio = copy_rate / python_rate
                print(f"{args.events:,} events: Python writer {python_rate:,.0f} rows/s, "
                      f"COPY TO STDOUT {copy_rate:,.0f} rows/s ({ratio:.1f}x), {same}", flush=True)  # fmt: skip
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

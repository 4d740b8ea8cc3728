"""Chart statements compared on the same data and server: one shape per filter combination against one
statement whose filters are optional, and the 15-minute rollup against an hourly one.

`python -m bench.chart_shapes [--events N] [--timescaledb]`; figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.run import NOW, bulk_load, rebuild_rollup
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.events import queries
from studytrack.events.bounds import bucket_bounds
from studytrack.events.durations import parse_duration
from studytrack.events.rollup import ceil_grain, floor_grain

HOURLY_ROLLUP = """
    CREATE TABLE events_1h AS
    SELECT date_bin(INTERVAL '1 hour', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00') AS bucket, tag,
           sum(minutes)::bigint AS minutes, sum(count)::bigint AS count
    FROM events_15m GROUP BY 1, 2;
    ALTER TABLE events_1h ADD PRIMARY KEY (tag, bucket);
    CREATE INDEX ON events_1h (bucket) INCLUDE (tag, minutes, count);
    ANALYZE events_1h;
"""
COMPRESS_OLD_CHUNKS = "SELECT compress_chunk(c) FROM show_chunks('events', older_than => interval '30 days') AS c"
GOALS = {
    "one tag": (["cka"], None),
    "one tag, one user": (["cka"], "u42"),
    "all tags": ([], None),
    "all tags, one user": ([], "u42"),
}


def spelled_out(statement: str, *, tags: bool, user: bool) -> str:
    """The statement with each filter written in or left out, as one shape per filter combination would be."""
    statement = statement.replace(queries._ANY_TAGS, "tag = ANY(%(tags)s)" if tags else "true")
    return statement.replace(queries._ANY_USER, "user_id = %(user_id)s" if user else "true")


def chart_params(tags: list[str], user_id: str | None, grain: timedelta) -> dict[str, Any]:
    start, end = NOW - timedelta(days=365), NOW
    bounds = bucket_bounds(parse_duration("1 day"), "UTC", start, end)
    inner_start, inner_end = ceil_grain(start), floor_grain(end)
    if grain == timedelta(hours=1):
        inner_start = inner_start + (-(inner_start - datetime(2000, 1, 3, tzinfo=start.tzinfo)) % grain)
        inner_end = inner_end - ((inner_end - datetime(2000, 1, 3, tzinfo=end.tzinfo)) % grain)
    return {
        "starts": list(bounds.starts), "start": start, "end": end, "tags": tags, "user_id": user_id,
        "inner_start": inner_start, "inner_end": inner_end, "row_limit": 50_001,
    }  # fmt: skip


def p50_ms(conn: psycopg.Connection[Any], statement: str, params: dict[str, Any], repeat: int) -> float:
    conn.execute(statement, params, prepare=False).fetchall()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(statement, params, prepare=False).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compare(conn: psycopg.Connection[Any], repeat: int) -> None:
    quarter, hour = timedelta(minutes=15), timedelta(hours=1)
    for name, (tags, user_id) in GOALS.items():
        rollup = user_id is None
        statement = queries.CHART_FROM_ROLLUP if rollup else queries.CHART_FROM_EVENTS
        shape = spelled_out(statement, tags=bool(tags), user=user_id is not None)
        params = chart_params(tags, user_id, quarter)
        line = f"{name}: one shape per filter {p50_ms(conn, shape, params, repeat):6.1f} ms, "
        line += f"optional filters {p50_ms(conn, statement, params, repeat):6.1f} ms"
        if rollup:
            hourly = statement.replace("FROM events_15m", "FROM events_1h")
            line += f", hourly rollup {p50_ms(conn, hourly, chart_params(tags, user_id, hour), repeat):6.1f} ms"
        print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--timescaledb", action="store_true", help="native TimescaleDB, chunks older than 30 days compressed"
    )
    args = parser.parse_args()
    mode = "required" if args.timescaledb else "off"
    settings = dataclasses.replace(load_settings(), timescaledb=mode, database_url=None)
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=args.timescaledb)
        try:
            run_migrations(url, settings)
            bulk_load(url, args.events, seed=1)
            rebuild_rollup(url)
            with psycopg.connect(url, autocommit=True) as conn:
                if args.timescaledb:
                    conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
                    conn.execute(
                        "SELECT compress_chunk(c) FROM show_chunks('events', older_than => interval '30 days') c"
                    )
                conn.execute(HOURLY_ROLLUP)
                conn.execute("VACUUM ANALYZE")
                print(f"{args.events:,} events, {'TimescaleDB' if args.timescaledb else 'plain PostgreSQL'}:")
                compare(conn, args.repeat)
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

"""Chart statements compared on the same data and server: the 15-minute rollup against the hourly one, one
shape per filter combination against one statement whose filters are optional, a person's statement prepared
against planned each time, and per zone the statement the service picks against each coarse rollup (daily,
six-hourly, with their moved rows) and the fine one (hourly, 15-minute) it would read without them; last,
how long `studytrack db rebuild-rollups` takes on the same data.

`python -m bench.chart_shapes [--events N] [--timescaledb]`; figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.run import NOW, bulk_load, rebuild_rollup
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.mode import DatabaseMode
from studytrack.database.rollups import rebuild_coarse_rollups
from studytrack.events import queries, service
from studytrack.events.bounds import BucketBounds, bucket_bounds
from studytrack.events.durations import parse_duration
from studytrack.events.params import BucketQuery
from studytrack.events.rollup import DAY, HOUR, QUARTER_HOUR, SIX_HOURS, ceil_to, floor_to

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
    return {
        "starts": list(bounds.starts), "start": start, "end": end, "tags": tags, "user_id": user_id,
        "inner_start": ceil_to(start, grain), "inner_end": floor_to(end, grain), "row_limit": 50_001,
    }  # fmt: skip


def p50_ms(
    conn: psycopg.Connection[Any], statement: str, params: dict[str, Any], repeat: int, prepare: bool = False
) -> float:
    for _ in range(6 if prepare else 1):  # prepared: past PostgreSQL's five custom plans, to its choice
        conn.execute(statement, params, prepare=prepare).fetchall()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(statement, params, prepare=prepare).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compare(conn: psycopg.Connection[Any], repeat: int) -> None:
    for name, (tags, user_id) in GOALS.items():
        if user_id is not None:
            shape = queries.CHART_FOR_USER_TAGS if tags else queries.CHART_FOR_USER
            params = chart_params(tags, user_id, QUARTER_HOUR)
            prepared = p50_ms(conn, shape, params, repeat, prepare=True)
            line = f"{name}: raw rows, the person's statement prepared {prepared:6.2f} ms, "
            line += f"planned each time {p50_ms(conn, shape, params, repeat):6.2f} ms, "
            line += f"optional filters {p50_ms(conn, queries.CHART_FROM_EVENTS, params, repeat):6.2f} ms"
        else:
            quarter = chart_params(tags, user_id, QUARTER_HOUR)
            hour = chart_params(tags, user_id, HOUR)
            shape = spelled_out(queries.CHART_FROM_HOURS, tags=bool(tags), user=False)
            line = (
                f"{name}: 15-minute rollup {p50_ms(conn, queries.CHART_FROM_QUARTER_HOURS, quarter, repeat):6.1f} ms, "
            )
            line += f"hourly rollup {p50_ms(conn, queries.CHART_FROM_HOURS, hour, repeat):6.1f} ms, "
            line += f"hourly, one shape per filter {p50_ms(conn, shape, hour, repeat):6.1f} ms"
        print(line, flush=True)


ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Asia/Tokyo",
)
MODE = DatabaseMode(server_version="", timescaledb_version=None, rollup=True)  # the statements are the same in both


def fine_rollup(bounds: BucketBounds, params: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """The rollup statement a chart would read without the coarse ones: hourly, or 15-minute off the hour."""
    grain, name, statement = HOUR, "hourly", queries.CHART_FROM_HOURS
    if not bounds.on_grid(ceil_to(params["start"], HOUR), floor_to(params["end"], HOUR), HOUR):
        grain, name, statement = QUARTER_HOUR, "15-minute", queries.CHART_FROM_QUARTER_HOURS
    inner = {"inner_start": ceil_to(params["start"], grain), "inner_end": floor_to(params["end"], grain)}
    return name, statement, params | inner


def moved_rows(inner: dict[str, Any]) -> int:
    return len(inner.get("moved_hours", ())) + len(inner.get("moved_quarters", ()))


COARSE = {"daily": DAY, "six-hourly": SIX_HOURS}


def compare_zones(conn: psycopg.Connection[Any], repeat: int) -> None:
    """Per zone, the statement the service picks, then each coarse rollup (with its moved rows) and the fine one."""
    names = {queries.CHART_FROM_DAYS: "daily", queries.CHART_FROM_SIX_HOURS: "six-hourly"}
    for tz in ZONES:
        for tags in ([], ["cka"]):
            query = BucketQuery(duration="1 day", start=NOW - timedelta(days=365), end=NOW, tz=tz, tags=tags)
            bounds = bucket_bounds(query.width, tz, query.start, query.end)  # type: ignore[arg-type]
            statement, inner = service._chart_statement(query, bounds, MODE)
            params = service._filter_params(query) | {"starts": list(bounds.starts), "row_limit": 50_001}
            line = f"{tz}, {'one tag' if tags else 'all tags'}: picked {names.get(statement, 'fine')}"
            line += f" {p50_ms(conn, statement, params | inner, repeat):6.1f} ms;"
            for name, grain in COARSE.items():
                forced = service._from_coarse(query, bounds, None, (grain,))
                if forced is not None:
                    ms = p50_ms(conn, forced[0], params | forced[1], repeat)
                    line += f" {name} ({moved_rows(forced[1])} moved rows) {ms:6.1f} ms,"
            fine, fine_statement, fine_params = fine_rollup(bounds, params)
            print(f"{line} {fine} {p50_ms(conn, fine_statement, fine_params, repeat):6.1f} ms", flush=True)


def time_rebuild(url: str, rounds: int = 3) -> None:
    for _ in range(rounds):
        started = time.perf_counter()
        rows = rebuild_coarse_rollups(url)
        elapsed = (time.perf_counter() - started) * 1000
        counts = ", ".join(f"{table} {count:,} rows" for table, count in rows.items())
        print(f"  studytrack db rebuild-rollups: {elapsed:.0f} ms ({counts})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument(
        "--timescaledb", action="store_true", help="native TimescaleDB, chunks older than 30 days compressed"
    )
    parser.add_argument("--chunk-days", type=int, help="CHUNK_TIME_INTERVAL_DAYS (default: the setting's)")
    args = parser.parse_args()
    mode = "required" if args.timescaledb else "off"
    settings = dataclasses.replace(load_settings(), timescaledb=mode, database_url=None)
    if args.chunk_days is not None:
        settings = dataclasses.replace(settings, chunk_time_interval=timedelta(days=args.chunk_days))
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=args.timescaledb)
        try:
            run_migrations(url, settings)
            bulk_load(url, args.events, seed=1)
            rebuild_rollup(url)
            with psycopg.connect(url, autocommit=True) as conn:
                if args.timescaledb:
                    conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
                    conn.execute(COMPRESS_OLD_CHUNKS)
                    conn.execute("CALL studytrack_index_columnstore()")  # what its job does within 15 minutes
                conn.execute("VACUUM ANALYZE")
                chunks = f"TimescaleDB, chunks of {settings.chunk_time_interval.days} days"
                print(f"{args.events:,} events, {chunks if args.timescaledb else 'plain PostgreSQL'}:")
                compare(conn, args.repeat)
                compare_zones(conn, args.repeat)
            time_rebuild(url)
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

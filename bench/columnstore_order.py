"""Per-user queries on compressed chunks: columnstore layouts (segmentby, orderby), same data, same server.

`python -m bench.columnstore_order [--events N]` (about 20 minutes at 10M events); figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from bench.run import bulk_load
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations

YEAR = "time >= now() - interval '365 days'"
QUERIES = {
    "one tag": f"SELECT date_bin('1 day', time, '2000-01-03'::timestamptz), sum(minutes) FROM events"
    f" WHERE tag = 'cka' AND {YEAR} GROUP BY 1",
    "one tag, one user": f"SELECT date_bin('1 day', time, '2000-01-03'::timestamptz), sum(minutes) FROM events"
    f" WHERE tag = 'cka' AND user_id = 'u42' AND {YEAR} GROUP BY 1",
    "all tags, one user": f"SELECT date_bin('1 day', time, '2000-01-03'::timestamptz), tag, sum(minutes) FROM events"
    f" WHERE user_id = 'u42' AND {YEAR} GROUP BY 1, 2",
    "stats, all users": f"SELECT tag, sum(minutes), count(*) FROM events WHERE {YEAR} GROUP BY tag",
}
LAYOUTS = (("tag", "user_id, time DESC"), ("user_id", "tag, time DESC"))  # (segmentby, orderby)


def p50_ms(conn: psycopg.Connection[tuple[object, ...]], query: str, repeat: int = 30) -> float:
    conn.execute(query).fetchall()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        conn.execute(query).fetchall()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def compress_laid_out(conn: psycopg.Connection[tuple[object, ...]], segmentby: str, orderby: str) -> str:
    conn.execute("SELECT decompress_chunk(c, if_compressed => true) FROM show_chunks('events') AS c")
    conn.execute(
        sql.SQL("ALTER TABLE events SET (timescaledb.segmentby = {}, timescaledb.orderby = {})").format(
            sql.Literal(segmentby), sql.Literal(orderby)
        )
    )
    conn.execute("SELECT compress_chunk(c) FROM show_chunks('events', older_than => now() - interval '30 days') AS c")
    conn.execute("VACUUM ANALYZE events")
    size = conn.execute("SELECT sum(after_compression_total_bytes) FROM chunk_columnstore_stats('events')").fetchone()
    return f"{float(str(size[0])) / 2**20:.0f} MB" if size else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), timescaledb="required", database_url=None)
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=True)
        try:
            run_migrations(url, settings)
            bulk_load(url, args.events, seed=1)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
                for segmentby, orderby in LAYOUTS:
                    size = compress_laid_out(conn, segmentby, orderby)
                    figures = ", ".join(f"{name} {p50_ms(conn, query):.1f} ms" for name, query in QUERIES.items())
                    print(f"segmentby {segmentby!r}, orderby {orderby!r}: compressed {size}; p50 {figures}", flush=True)
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

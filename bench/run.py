"""Ingest and query benchmark: one run, one machine, figures printed as a table.

Everything is measured in this run against baselines measured in the same run:
  0. the real HTTP ceiling: a bare FastAPI app with the same request model (bench/bare.py), measured in
     turn with our no-op (bare, no-op, bare, no-op) in each mode, so a drift of the shared cores hits both;
  1. our app's HTTP ceiling: POST /bench/noop (same request model, auth and handler as POST /api/events/, writes
     nothing, every middleware of the service);
  2. single-event POST /api/events/ throughput and latency (wrk, unique ids, group commit);
  3. batch ingest through HTTP (JSON arrays of 10,000) and raw binary COPY into the same table (psycopg);
  4. bucket query latency, one year of daily buckets: one tag, one tag for one user, all tags, all tags
     for one user, at each size (from 1,000 people, or one per 1,000 sessions: `people`);
  5. ratios: each HTTP figure against the bare app, single/no-op, and batch/COPY.
Each of them in both database modes, one after the other, each on its own embedded server: plain PostgreSQL,
then native TimescaleDB (preloaded; old chunks compressed by the columnstore policy before the queries).
gunicorn with 2 Uvicorn workers, as in production.

Run: ./bench/run.sh [--sizes 1000000,10000000] [--seconds 10] [--modes postgresql,timescaledb]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from psycopg import sql

from studytrack.auth.tokens import create_token
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.timescaledb_build import TIMESCALEDB_VERSION, is_installed

REPO = Path(__file__).resolve().parent.parent
TAGS = ["cka", "ckad", "terraform", "aws-saa", "github actions", "python", "sql", "linux", "go", "rust"]
USERS = 1000
# A year of one person's sessions: about three a day, every day. A per-user chart reads that person's rows
# only, so its cost is set by this, not by the table's size; a table of more events has more people.
SESSIONS_PER_PERSON = 1000
NOW = datetime.now(UTC).replace(microsecond=0)
ROWS: list[tuple[str, str]] = []  # the printed table


def report(name: str, value: str) -> None:
    ROWS.append((name, value))
    print(f"  {name:<58} {value}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_token(url: str) -> str:
    async def make() -> str:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("DELETE FROM api_tokens WHERE name = 'bench'")
            return await create_token(conn, name="bench", scopes=["admin"])

    return asyncio.run(make())


def wait_healthy(base: str, process: subprocess.Popen[Any], name: str, seconds: float) -> None:
    """Until `base`/healthz answers 200; a RuntimeError if `process` exits or `seconds` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"{name} did not become healthy")
        time.sleep(0.2)


@contextmanager
def gunicorn(
    url: str, workers: int, extra_env: dict[str, str] | None = None, app: str = "bench.app:create_bench_app()"
) -> Iterator[str]:
    port = free_port()
    # This checkout's src first: a clone benchmarked with another checkout's venv serves its own code.
    path = f"{REPO / 'src'}:{REPO}"
    env = os.environ | {"DATABASE_URL": url, "LOG_LEVEL": "warning", "PYTHONPATH": path} | (extra_env or {})
    command = [
        sys.executable, "-m", "gunicorn", "-c", "python:studytrack.web.gunicorn_conf",
        "-w", str(workers), "-b", f"127.0.0.1:{port}", app,
    ]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, server, "gunicorn", seconds=60)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=40)


def wrk(url: str, token: str, seconds: int, connections: int = 64, get: bool = False) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) of unique-event POSTs (or of GETs of `url`); fails loudly on any non-2xx."""
    requests = ["-H", f"Authorization: Bearer {token}"] if get else ["-s", str(REPO / "bench" / "post.lua")]
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", *requests, url],
        env=os.environ | {"BENCH_TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")

    def ms(label: str) -> float:
        match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate, out
    return float(rate.group(1)), ms("50%"), ms("99%")


def people(events: int) -> int:
    """How many people a year of `events` sessions comes from: 1,000, or one per 1,000 sessions."""
    return max(USERS, events // SESSIONS_PER_PERSON)


def generate(
    count: int, seed: int, users: int = USERS
) -> Iterator[tuple[uuid.UUID, datetime, str, int, str | None, None, str]]:
    """A year of sessions: 10 tags, `users` people, pomodoro lengths."""
    rng = random.Random(seed)
    span = 365 * 86400
    for _ in range(count):
        start = NOW - timedelta(seconds=rng.randrange(span))
        yield (uuid.UUID(int=rng.getrandbits(128), version=4), start, rng.choice(TAGS),
               rng.choice((25, 25, 25, 50, 50, 90)), f"u{rng.randrange(users)}", None, "bench")  # fmt: skip


def copy_rows(url: str, count: int, seed: int, users: int = USERS) -> float:
    """Binary COPY straight into `events` (no dedup, no rollup): rows/s, the database's ceiling."""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        with cur.copy("COPY events (id, time, tag, minutes, user_id, note, source) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "timestamptz", "text", "int4", "text", "text", "text"])
            for row in generate(count, seed, users):
                copy.write_row(row)
        conn.commit()
        return count / (time.perf_counter() - started)


UNNEST_INSERT = """
    INSERT INTO events (id, time, tag, minutes, user_id, note, source)
    SELECT * FROM unnest(%(ids)b::uuid[], %(times)b::timestamptz[], %(tags)b::text[], %(minutes)b::int[],
                         %(user_ids)b::text[], %(notes)b::text[], %(sources)b::text[])
    ON CONFLICT (id, time) DO NOTHING RETURNING id, time, received_at
"""
STAGED_INSERT = """
    INSERT INTO events (id, time, tag, minutes, user_id, note, source) SELECT * FROM staged
    ON CONFLICT (id, time) DO NOTHING RETURNING id, time, received_at
"""


def write_strategies(url: str, batches: int, size: int = 10_000) -> tuple[float, float]:
    """rows/s of the two ways to write a deduplicated batch: one INSERT from arrays (what the service
    does) and COPY into a temporary staging table + INSERT ... SELECT ... ON CONFLICT."""
    unnest_seconds = staged_seconds = 0.0
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(batches):
            ids, times, tags, minutes, user_ids, notes, sources = (
                list(c) for c in zip(*generate(size, 20_000 + n), strict=True)
            )
            started = time.perf_counter()
            params = {"ids": ids, "times": times, "tags": tags, "minutes": minutes}
            conn.execute(UNNEST_INSERT, params | {"user_ids": user_ids, "notes": notes, "sources": sources}).fetchall()
            unnest_seconds += time.perf_counter() - started
            rows = list(generate(size, 30_000 + n))
            started = time.perf_counter()
            with conn.transaction():
                conn.execute("CREATE TEMP TABLE staged (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP")
                conn.execute("ALTER TABLE staged DROP COLUMN received_at")
                with conn.cursor().copy("COPY staged FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["uuid", "timestamptz", "text", "int4", "text", "text", "text"])
                    for row in rows:
                        copy.write_row(row)
                conn.execute(STAGED_INSERT).fetchall()
            staged_seconds += time.perf_counter() - started
    return batches * size / unnest_seconds, batches * size / staged_seconds


def bulk_load(url: str, count: int, seed: int, users: int | None = None) -> None:
    """Load test data fast: drop the indexes, COPY, recreate them from their own definitions. The events
    come from `users` people (by default as many as `people(count)`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' AND indexname <> 'events_pkey'"
        ).fetchall()
        conn.execute("ALTER TABLE events DROP CONSTRAINT events_pkey")
        for name, _ in indexes:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    copy_rows(url, count, seed, users or people(count))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("ALTER TABLE events ADD PRIMARY KEY (id, time)")
        for _, definition in indexes:
            conn.execute(definition)  # the migration's own DDL, read back from pg_indexes


ROLLUP_GRAINS = {"events_15m": "15 minutes", "events_1h": "1 hour", "events_6h": "6 hours", "events_1d": "1 day"}


def rebuild_rollup(url: str) -> None:
    """After bulk COPY (which bypasses the ingest path) rebuild the rollup tables."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE events_15m, events_1h, events_6h, events_1d")
        for table, grain in ROLLUP_GRAINS.items():
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (bucket, tag, minutes, count)"
                    " SELECT date_bin({}::interval, time, TIMESTAMPTZ '2000-01-03 00:00:00+00'), tag,"
                    " sum(minutes), count(*) FROM events GROUP BY 1, 2"
                ).format(sql.Identifier(table), sql.Literal(grain))
            )


def batch_ingest(base: str, token: str, batches: int, size: int = 10_000, seed: int = 10_000) -> float:
    """events/s of JSON-array batches of new events through HTTP, two clients at a time (another `seed`, other
    events)."""
    bodies = []
    for n in range(batches):
        rows = generate(size, seed=seed + n)
        bodies.append(json.dumps([
            {"id": str(i), "time": t.isoformat(), "tag": tag, "minutes": m, "user_id": u, "source": s}
            for i, t, tag, m, u, _, s in rows
        ]).encode())  # fmt: skip

    async def send_all() -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            queue = list(bodies)

            async def worker() -> None:
                while queue:
                    response = await client.post("/api/events/batch", content=queue.pop())
                    response.raise_for_status()

            await asyncio.gather(worker(), worker())

    started = time.perf_counter()
    asyncio.run(send_all())
    return batches * size / (time.perf_counter() - started)


def query_latency(
    base: str, token: str, params: dict[str, Any], repeat: int, path: str = "/api/events/"
) -> tuple[float, float]:
    """(p50 ms, p99 ms) of GET `path` with these parameters, sequential requests."""
    timings = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for _ in range(5):  # warm: each worker's connections and caches
            client.get(path, params=params).raise_for_status()
        for _ in range(repeat):
            started = time.perf_counter()
            client.get(path, params=params).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(len(timings) * 0.99))]


YEAR = {"duration": "1 day", "start": (NOW - timedelta(days=365)).isoformat(), "end": NOW.isoformat()}
# The goals: one tag over all users (<= 20 ms) and one tag for one user (<= 5 ms) at 10M events.
QUERIES = {
    "one tag": YEAR | {"tags": "cka"},
    "one tag, one user": YEAR | {"tags": "cka", "user_id": "u42"},
    "all tags": YEAR,
    "all tags, one user": YEAR | {"user_id": "u42"},
}


# What the dashboard asks for when it opens: 30 days of daily buckets, every tag, filled, in the browser's zone.
DASHBOARD = {
    "duration": "1 day", "start": (NOW - timedelta(days=29)).date().isoformat(),
    "end": (NOW + timedelta(days=1)).date().isoformat(), "tz": "Europe/Berlin", "fill": "true",
}  # fmt: skip


def measure_dashboard_load(label: str, base: str, token: str, seconds: int) -> None:
    """64 clients asking for the dashboard's default chart, beside the same load on GET /healthz."""
    chart = wrk(f"{base}/api/events/?{urlencode(DASHBOARD)}", token, seconds, get=True)
    health = wrk(f"{base}/healthz", token, seconds, get=True)
    for name, (rate, p50, p99) in (("dashboard chart", chart), ("GET /healthz", health)):
        report(f"{label}: 64 clients, {name}", f"{rate:9.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    report(f"{label}: ratio dashboard chart / healthz", f"{chart[0] / health[0]:9.2f}")


def measure_queries(label: str, base: str, token: str, repeat: int) -> dict[str, float]:
    # The floor under the figures below: the same client, HTTP stack and pool checkout, a trivial query.
    p50, p99 = query_latency(base, token, {}, repeat, path="/healthz")
    report(f"{label}: HTTP floor, GET /healthz", f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    p50s = {}
    for name, params in QUERIES.items():
        p50, p99 = query_latency(base, token, params, repeat)
        report(f"{label}: 1 year daily, {name}", f"p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
        p50s[name] = p50
    return p50s


def throughput(rate: float, p50: float, p99: float) -> str:
    return f"{rate:9.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms"


INDEX_JOB = "studytrack_index_columnstore"


def wait_for_compression(url: str, older_than: timedelta) -> str:
    """Let the scheduler run the columnstore policy now (as it would on its own schedule), then index the
    compressed chunks; the ratio."""
    with psycopg.connect(url, autocommit=True) as conn:
        job = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression'")
        conn.execute("SELECT alter_job(%s, next_start => now())", (job.fetchone()[0],))  # type: ignore[index]
        pending = (
            "SELECT count(*) FROM timescaledb_information.chunks"
            " WHERE hypertable_name = 'events' AND NOT is_compressed AND range_end < now() - %s"
        )
        deadline = time.monotonic() + 1800
        while conn.execute(pending, (older_than,)).fetchone() != (0,):
            if time.monotonic() > deadline:
                raise RuntimeError("the columnstore policy did not compress the old chunks in 30 minutes")
            time.sleep(2)
        # The compressed chunks' time index, which the scheduler adds within 15 minutes (migration 0006).
        index_job = conn.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s", (INDEX_JOB,))
        conn.execute("CALL run_job(%s)", (index_job.fetchone()[0],))  # type: ignore[index]
        before, after = conn.execute(
            "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes)"
            " FROM chunk_columnstore_stats('events') WHERE compression_status = 'Compressed'"
        ).fetchone()  # type: ignore[misc]
    return f"{before / 2**20:.0f} MB -> {after / 2**20:.0f} MB ({before / after:.1f}x)"


def prepare_queries(url: str, timescaledb: bool, compress_after: timedelta | None) -> None:
    """After a bulk load: the rollup rebuilt (and, in TimescaleDB mode, old chunks compressed), then a
    checkpoint, so queries are measured in a steady state."""
    rebuild_rollup(url)
    if timescaledb and compress_after is not None:
        report("  columnstore after the policy ran", wait_for_compression(url, compress_after))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE events_15m, events_1h, events_6h, events_1d")
        conn.execute("CHECKPOINT")
    os.sync()


CEILING_ROUNDS = 2  # bare and no-op in turn, this many times each


def measure_ceilings(args: argparse.Namespace, mode: str, base: str, token: str) -> tuple[float, float]:
    """req/s of the bare FastAPI app (bench/bare.py, the ceiling every HTTP ratio is taken against) and of our
    no-op, measured in turn on the same cores; the mean of each."""
    bare, noop = [], []
    with gunicorn("postgresql://unused", workers=2, app="bench.bare:app") as bare_base:
        for _ in range(CEILING_ROUNDS):
            bare.append(wrk(f"{bare_base}/bench/bare", "unused", args.seconds))
            noop.append(wrk(f"{base}/bench/noop", token, args.seconds))
    for name, runs in (("bare FastAPI no-op POST (the real ceiling)", bare), ("no-op POST (our HTTP ceiling)", noop)):
        for rate, p50, p99 in runs:
            report(f"{mode}: {name}", throughput(rate, p50, p99))
    return statistics.mean(rate for rate, _, _ in bare), statistics.mean(rate for rate, _, _ in noop)


def measure_mode(args: argparse.Namespace, mode: str) -> None:
    """Ingest and queries on one embedded server: plain PostgreSQL, or native TimescaleDB preloaded."""
    timescaledb = mode == "timescaledb"
    settings = replace(load_settings(), timescaledb="required" if timescaledb else "off")
    name = f"TimescaleDB {TIMESCALEDB_VERSION}" if timescaledb else "plain PostgreSQL"
    env = {"TIMESCALEDB": settings.timescaledb}
    with tempfile.TemporaryDirectory(prefix="studytrack-bench-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=timescaledb)
        try:
            run_migrations(url, settings)
            token = make_token(url)
            with gunicorn(url, workers=2, extra_env=env) as base:
                print(f"HTTP ingest ({name}, gunicorn 2 Uvicorn workers, wrk -t2 -c64):")
                bare, noop = measure_ceilings(args, mode, base, token)
                single, s50, s99 = wrk(f"{base}/api/events/", token, args.seconds)
                report(
                    f"{mode}: single-event POST /api/events/",
                    f"{single:9.0f} req/s  p50 {s50:.1f} ms  p99 {s99:.1f} ms",
                )
                batch = batch_ingest(base, token, batches=args.batches)
                report(f"{mode}: batch POST /api/events/batch ({args.batches} x 10,000)", f"{batch:9.0f} events/s")
            copy = copy_rows(url, args.batches * 10_000, seed=99)
            report(f"{mode}: raw binary COPY ({args.batches * 10_000:,} rows, same table)", f"{copy:9.0f} rows/s")
            report(f"{mode}: ratio no-op / bare FastAPI", f"{noop / bare:9.2f}")
            report(f"{mode}: ratio single / bare FastAPI", f"{single / bare:9.2f}")
            report(f"{mode}: ratio single / no-op", f"{single / noop:9.2f}")
            report(f"{mode}: ratio batch / COPY", f"{batch / copy:9.2f}")

            loaded = 0
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE events, events_15m, events_1h, events_6h, events_1d, event_ids")
            for size in args.sizes:
                print(f"Bucket queries at {size:,} events ({name}):")
                # Afresh when the events come from more people, and on TimescaleDB (indexes cannot be dropped
                # over compressed chunks).
                if loaded and (timescaledb or people(size) != people(loaded)):
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute("TRUNCATE events, events_15m, events_1h, events_6h, events_1d")
                    loaded = 0
                bulk_load(url, size - loaded, seed=size, users=people(size))
                loaded = size
                prepare_queries(url, timescaledb, settings.compress_after)
                with gunicorn(url, workers=2, extra_env=env) as base:
                    measure_queries(f"{mode}: {size:>10,} events", base, token, args.repeat)
                    measure_dashboard_load(f"{mode}: {size:>10,} events", base, token, args.seconds)
        finally:
            stop_embedded_database(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="event counts for the query benchmark")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per HTTP benchmark")
    parser.add_argument("--batches", type=int, default=20, help="10,000-event batches for batch ingest and COPY")
    parser.add_argument("--repeat", type=int, default=200, help="requests per query latency figure")
    parser.add_argument("--modes", default="postgresql,timescaledb", help="database modes, in this order")
    args = parser.parse_args()
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    if "timescaledb" in args.modes and not is_installed():
        parser.error("TimescaleDB is not in the embedded PostgreSQL: run `studytrack timescaledb install` first")
    print(f"studytrack benchmark, {os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    for mode in args.modes.split(","):
        measure_mode(args, mode)
    print("\n| measurement | result |\n|---|---|")
    for name, value in ROWS:
        print(f"| {name.strip()} | {' '.join(value.split())} |")


if __name__ == "__main__":
    main()

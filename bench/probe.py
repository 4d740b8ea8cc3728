"""Where the time goes: CPU per request of the hot paths, split by process, measured from /proc.

bench/run.py says how fast; this says why. On a fresh embedded PostgreSQL and gunicorn with 2 Uvicorn
workers (as in the benchmark) it prints, for the no-op POST, single-event POSTs and 10,000-event batches:
  - the CPU time of the gunicorn workers, of PostgreSQL and of the load generator per request (or event),
    from /proc/<pid>/stat and getrusage, so the cost that separates a path from the no-op is visible;
  - events per write transaction (transaction ids taken), i.e. how many single POSTs group commit
    puts in one statement;
and for the bucket queries at --rows events: the client's p50 beside the server's own mean time (the
service's request-duration histogram on /metrics) and the HTTP floor (GET /healthz), then the CPU split of
64 clients asking for the dashboard's default chart.

Run: ./bench/run.sh probe [--seconds 8] [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from bench.run import DASHBOARD, QUERIES, batch_ingest, bulk_load, gunicorn, make_token, rebuild_rollup, wrk
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations

TICKS = os.sysconf("SC_CLK_TCK")


def postmaster_pid(url: str) -> int:
    """The pid of the server behind `url` (from its data directory's postmaster.pid)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    assert row is not None
    return int((Path(str(row[0])) / "postmaster.pid").read_text().split()[0])


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, user + system CPU seconds) of every live process."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found[int(pid)] = (int(fields[1]), arguments, (int(fields[11]) + int(fields[12])) / TICKS)
    return found


def _descends(pid: int, roots: set[int], processes: dict[int, tuple[int, str, float]]) -> bool:
    while pid > 1:
        if pid in roots:
            return True
        pid = processes[pid][0] if pid in processes else 0
    return False


def cpu_seconds(postmasters: set[int]) -> dict[str, float]:
    """User + system CPU of this run's gunicorn and haproxy processes (started by this process), of the
    PostgreSQL servers `postmasters` and their backends, and of the load generator (wrk, or this process for
    batches). Other servers on the machine (tests, other benchmarks) are not counted."""
    totals = {"workers": 0.0, "postgres": 0.0, "balancer": 0.0}
    processes = _processes()
    for pid, (_, arguments, seconds) in processes.items():
        if _descends(pid, postmasters, processes):
            totals["postgres"] += seconds
        elif _descends(pid, {os.getpid()}, processes):
            if "gunicorn" in arguments:
                totals["workers"] += seconds
            elif "haproxy" in arguments:
                totals["balancer"] += seconds
    clients = [resource.getrusage(who) for who in (resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF)]
    totals["load generator"] = sum(usage.ru_utime + usage.ru_stime for usage in clients)
    return totals


def next_xid(url: str) -> int:
    """Every write transaction takes a transaction id; this call takes one too."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        assert row is not None
        return int(row[0])


def probe(name: str, url: str, run: Callable[[], tuple[float, float]], unit: str) -> None:
    """Run a load that returns (units done, units/s); print its rate, CPU per unit by process, units per commit."""
    postmasters = {postmaster_pid(url)}
    before, xid_before = cpu_seconds(postmasters), next_xid(url)
    count, rate = run()
    after, xid_after = cpu_seconds(postmasters), next_xid(url)
    split = "  ".join(f"{key} {(after[key] - before[key]) / count * 1e6:6.0f}" for key in before)
    writes = xid_after - xid_before - 1  # minus the first next_xid() call
    per_write = f"{count / writes:7.1f}" if writes > 0 else "      -"
    print(f"  {name:<24} {rate:9.0f} {unit}s/s   CPU us per {unit}: {split}   {unit}s per write {per_write}")


def server_mean_ms(client: httpx.Client) -> tuple[float, float]:
    """(sum seconds, count) of GET /api/events/ in the service's request-duration histogram."""
    total = count = 0.0
    for line in client.get("/metrics").text.splitlines():
        if 'route="/api/events/"' in line and 'method="GET"' in line:
            if line.startswith("studytrack_http_request_duration_seconds_sum"):
                total = float(line.split()[-1])
            elif line.startswith("studytrack_http_request_duration_seconds_count"):
                count = float(line.split()[-1])
    return total, count


def query_split(base: str, token: str, params: dict[str, Any], repeat: int = 300) -> str:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        for _ in range(10):
            client.get("/api/events/", params=params).raise_for_status()
        total_before, count_before = server_mean_ms(client)
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            client.get("/api/events/", params=params).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
        total_after, count_after = server_mean_ms(client)
    server = (total_after - total_before) / (count_after - count_before) * 1000
    return f"client p50 {statistics.median(timings):6.2f} ms   server mean {server:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per POST probe")
    parser.add_argument("--rows", type=int, default=1_000_000, help="events loaded for the query probe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studytrack-probe-") as home:
        server, url = start_embedded_database(Path(home))
        try:
            run_migrations(url, load_settings())
            token = make_token(url)
            print(f"Ingest, {os.cpu_count()} CPUs, gunicorn 2 workers, wrk -t2 -c64 for {args.seconds} s:")
            with gunicorn(url, workers=2) as base:

                def posts(path: str) -> tuple[float, float]:
                    rate = wrk(f"{base}{path}", token, args.seconds)[0]
                    return rate * args.seconds, rate

                def batches() -> tuple[float, float]:
                    return 100_000, batch_ingest(base, token, batches=10)

                probe("no-op POST", url, lambda: posts("/bench/noop"), "request")
                probe("single-event POST", url, lambda: posts("/api/events/"), "request")
                probe("batch POST (10 x 10,000)", url, batches, "event")
            print(f"Bucket queries at {args.rows:,} events, one year daily, sequential:")
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE events, events_15m, events_1h, events_6h, events_1d")
            bulk_load(url, args.rows, seed=args.rows)
            rebuild_rollup(url)
            with gunicorn(url, workers=2) as base:
                with httpx.Client(base_url=base) as client:
                    floor = []
                    for _ in range(300):
                        started = time.perf_counter()
                        client.get("/healthz").raise_for_status()
                        floor.append((time.perf_counter() - started) * 1000)
                print(f"  {'HTTP floor, GET /healthz':<24} client p50 {statistics.median(floor):6.2f} ms")
                for name, params in QUERIES.items():
                    print(f"  {name:<24} {query_split(base, token, params)}")

                def dashboard() -> tuple[float, float]:
                    rate = wrk(f"{base}/api/events/?{urlencode(DASHBOARD)}", token, args.seconds, get=True)[0]
                    return rate * args.seconds, rate

                print("The dashboard's default chart, wrk -t2 -c64 (what bounds it: the CPU split):")
                probe("dashboard chart", url, dashboard, "request")
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

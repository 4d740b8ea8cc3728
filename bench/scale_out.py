"""API replicas behind a real load balancer: 1, 2 and 4 gunicorn instances (one Uvicorn worker each) behind
HAProxy on loopback, against one instance with two workers and no balancer (the usual shape), and that instance
reading from a hot standby (the recipe of tests/replicas/cluster.py), on one embedded PostgreSQL. For each:
single-event POSTs, batches and the dashboard's default chart (64 clients), with the CPU each kind of process
used, as a share of the machine, to say what bounds it.

Run: ./bench/run.sh scale [--seconds 8] [--events 1000000]   (HAProxy from Debian; figures in docs/scaling.md)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from bench.probe import cpu_seconds, postmaster_pid
from bench.run import (
    DASHBOARD,
    batch_ingest,
    bulk_load,
    free_port,
    gunicorn,
    make_token,
    rebuild_rollup,
    wait_healthy,
    wrk,
)
from studytrack.config import load_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from tests.replicas.cluster import in_database, start_standby

APP = "studytrack.web.app:create_app()"
HAPROXY_CONFIG = """
global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend api
    bind 127.0.0.1:{port}
    default_backend replicas
backend replicas
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


@contextmanager
def haproxy(backends: list[str], directory: Path) -> Iterator[str]:
    """HAProxy round-robin over the backends (http://127.0.0.1:PORT each); yields its base URL."""
    port = free_port()
    servers = "\n".join(
        f"    server api{n} {base.removeprefix('http://')} check inter 1s" for n, base in enumerate(backends)
    )
    config = directory / f"haproxy-{port}.cfg"
    config.write_text(HAPROXY_CONFIG.format(port=port, servers=servers))
    process = subprocess.Popen(["haproxy", "-f", str(config)])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, "haproxy", seconds=30)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def machine_share(
    run: Callable[[], tuple[float, float, float]], postmasters: set[int]
) -> tuple[tuple[float, float, float], str]:
    """Run a load; its result and the CPU each kind of process used, as a share of all the machine's cores."""
    before, started = cpu_seconds(postmasters), time.monotonic()
    result = run()
    after, seconds = cpu_seconds(postmasters), time.monotonic() - started
    capacity = seconds * (os.cpu_count() or 1)
    split = ", ".join(f"{key} {(after[key] - before[key]) / capacity:4.0%}" for key in before)
    return result, split


def measure(label: str, base: str, urls: list[str], token: str, seconds: int, seed: int) -> None:
    """`urls`: the databases whose servers' CPU counts as PostgreSQL's (the primary, and a standby read from)."""
    postmaster = {postmaster_pid(url) for url in urls}
    single, split = machine_share(lambda: wrk(f"{base}/api/events/", token, seconds), postmaster)
    print(f"  {label}: single POST {single[0]:7.0f} req/s, p99 {single[2]:6.1f} ms  [{split}]", flush=True)
    batch, split = machine_share(lambda: (batch_ingest(base, token, batches=10, seed=seed), 0.0, 0.0), postmaster)
    print(f"  {label}: batch       {batch[0]:7.0f} events/s          [{split}]", flush=True)
    chart_url = f"{base}/api/events/?{urlencode(DASHBOARD)}"
    chart, split = machine_share(lambda: wrk(chart_url, token, seconds, get=True), postmaster)
    print(f"  {label}: chart       {chart[0]:7.0f} req/s, p99 {chart[2]:6.1f} ms  [{split}]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per figure")
    parser.add_argument("--events", type=int, default=1_000_000, help="events loaded before the runs")
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="studytrack-scale-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=False)
        env = {"TIMESCALEDB": "off"}
        try:
            run_migrations(url, replace(settings, timescaledb="off"))
            token = make_token(url)
            bulk_load(url, args.events, seed=7)
            rebuild_rollup(url)
            print(f"{args.events:,} events, plain PostgreSQL, {os.cpu_count()} CPUs, wrk -t2 -c64:", flush=True)
            with gunicorn(url, workers=2, extra_env=env, app=APP) as base:
                measure("1 instance x 2 workers, no balancer", base, [url], token, args.seconds, seed=100_000)
            standby = start_standby(server, Path(home) / "standby")
            try:
                replica_url = in_database(standby.get_uri(), urlsplit(url).path.lstrip("/"))
                replica_env = env | {"DATABASE_REPLICA_URL": replica_url}
                with gunicorn(url, workers=2, extra_env=replica_env, app=APP) as base:
                    label = "1 instance x 2 workers, reads from a standby"
                    measure(label, base, [url, replica_url], token, args.seconds, seed=50_000)
            finally:
                stop_embedded_database(standby)
            for count in (1, 2, 4):
                with ExitStack() as stack:
                    instances = [gunicorn(url, workers=1, extra_env=env, app=APP) for _ in range(count)]
                    backends = [stack.enter_context(instance) for instance in instances]
                    base = stack.enter_context(haproxy(backends, Path(home)))
                    label = f"{count} instance{'s' if count > 1 else ''} x 1 worker, HAProxy"
                    measure(label, base, [url], token, args.seconds, seed=100_000 * (count + 1))
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

"""CPU per request of the HTTP paths, counting only this run's own processes: readable on shared cores.

Throughput on two shared cores swings with whatever else runs; the CPU a request costs swings much less. On a
fresh embedded PostgreSQL, for the bare FastAPI app (bench/bare.py), our no-op (`POST /bench/noop`) and the
durable single POST, it prints the CPU time per request of the gunicorn workers (2 Uvicorn workers), of
PostgreSQL and of wrk (`wrk -t2 -c64`, as bench/run.py), and the bare app's total as a ratio of each path's:
the throughput ratio the paths would have on cores of their own. Other processes on the machine (another
gunicorn, another PostgreSQL) are not counted: only the descendants of this run's gunicorn and postmaster.

`--tree PATH` measures another checkout's code with this script (e.g. `git worktree add /tmp/before main`),
so a before and an after can be measured alternately, in one run each, on one database.

Run: .venv/bin/python -m bench.cpu_per_request [--rounds 2] [--seconds 5] [--tree PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg

from bench.run import free_port, make_token
from studytrack.config import get_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def descendants_cpu(root: int) -> float:
    """User + system CPU seconds of every live descendant of `root`, from /proc."""
    processes: dict[int, tuple[int, float]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        processes[int(pid)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
    total, parents = 0.0, {root}
    while parents:
        children = {pid for pid, (parent, _) in processes.items() if parent in parents}
        total += sum(processes[pid][1] for pid in children)
        parents = children
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def gunicorn(tree: Path, app: str, url: str) -> Iterator[tuple[str, int]]:
    """(base URL, master pid) of gunicorn serving `app` from `tree`'s code, with the service's settings."""
    port = free_port()
    env = os.environ | {"DATABASE_URL": url, "LOG_LEVEL": "warning", "PYTHONPATH": f"{tree}:{tree / 'src'}"}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:studytrack.web.gunicorn_conf", "-w", "2"]
    command += ["-b", f"127.0.0.1:{port}", app]  # the access log to stdout, as deployed
    server = subprocess.Popen(
        command, env=env | {"TIMESCALEDB": "off"}, cwd=tree, start_new_session=True, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(base):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not become healthy")
            time.sleep(0.3)
        yield base, server.pid
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=40)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def cost(url: str, token: str, seconds: int, gunicorn_pid: int, postmaster_pid: int) -> dict[str, float]:
    """CPU microseconds per request by process group, and requests/s, of wrk POSTs of new sessions to `url`."""
    before = (descendants_cpu(gunicorn_pid), descendants_cpu(postmaster_pid), children_cpu())
    out = subprocess.run(
        ["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", str(REPO / "bench" / "post.lua"), url],
        env=os.environ | {"BENCH_TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = (descendants_cpu(gunicorn_pid), descendants_cpu(postmaster_pid), children_cpu())
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    spent = [(later - earlier) / requests * 1e6 for earlier, later in zip(before, after, strict=True)]
    return {"workers": spent[0], "postgres": spent[1], "wrk": spent[2], "rate": rate}


def postmaster(url: str) -> int:
    async def backend() -> int:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            assert row is not None
            return int(row[0])

    return int(Path(f"/proc/{asyncio.run(backend())}/stat").read_text().rsplit(")", 1)[1].split()[1])


def measure(tree: Path, url: str, token: str, seconds: int, postmaster_pid: int) -> dict[str, dict[str, float]]:
    with gunicorn(tree, "bench.bare:app", url) as (base, master):
        results = {"bare": cost(f"{base}/bench/bare", token, seconds, master, postmaster_pid)}
    with gunicorn(tree, "bench.app:create_bench_app()", url) as (base, master):
        results["noop"] = cost(f"{base}/bench/noop", token, seconds, master, postmaster_pid)
        results["single"] = cost(f"{base}/api/events/", token, seconds, master, postmaster_pid)
    return results


def report(label: str, results: dict[str, dict[str, float]]) -> None:
    total = {path: sum(v for k, v in cpu.items() if k != "rate") for path, cpu in results.items()}
    for path, cpu in results.items():
        ratio = total["bare"] / total[path]
        split = f"workers {cpu['workers']:6.1f}  postgres {cpu['postgres']:5.1f}  wrk {cpu['wrk']:5.1f}"
        print(
            f"  {label:5} {path:6}  {split}  = {total[path]:6.1f} us/request"
            f"  (bare/this {ratio:.2f}; {cpu['rate']:6.0f} req/s)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per path")
    parser.add_argument("--tree", type=Path, help="also measure this checkout, alternately with this one")
    args = parser.parse_args()
    trees = {"this": REPO} | ({"tree": args.tree.resolve()} if args.tree else {})
    with tempfile.TemporaryDirectory(prefix="studytrack-cpu-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=False)
        try:
            run_migrations(url, replace(get_settings(), timescaledb="off"))
            token, pid = make_token(url), postmaster(url)
            for round_ in range(1, args.rounds + 1):
                print(f"round {round_}:")
                for label, tree in trees.items():
                    report(label, measure(tree, url, token, args.seconds, pid))
        finally:
            stop_embedded_database(server)


if __name__ == "__main__":
    main()

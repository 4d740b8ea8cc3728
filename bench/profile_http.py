"""Where one worker's time goes on an HTTP path: py-spy samples a gunicorn worker while wrk loads it.

Paths: `bare` (bench/bare.py, the real ceiling), `noop` (our app's no-op: every middleware and the token
check), `single` (POST /api/events/, durable), `dashboard` (GET of the dashboard's default chart, as
bench/run.py asks for it, on 1M events). One Uvicorn worker on a fresh embedded PostgreSQL, with a token
as in the benchmark (`--auth-off` leaves the token check out); prints
req/s and the frames holding the most samples (inclusive), and keeps py-spy's raw file for a flame graph.
Profile on a quiet machine: on shared cores samples include time the worker waited for a CPU.

Run: .venv/bin/python -m bench.profile_http noop [--seconds 10] [--top 40]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode

from bench.run import DASHBOARD, bulk_load, make_token, rebuild_rollup
from studytrack.config import get_settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations

REPO = Path(__file__).resolve().parent.parent
PATHS = {
    "bare": ("bench.bare:app", "/bench/bare"),
    "noop": ("bench.app:create_bench_app()", "/bench/noop"),
    "single": ("bench.app:create_bench_app()", "/api/events/"),
    "dashboard": ("bench.app:create_bench_app()", f"/api/events/?{urlencode(DASHBOARD)}"),
}
CHART_EVENTS = 1_000_000


def top_frames(raw: Path, count: int) -> list[tuple[float, str]]:
    """Share of all samples in which each frame (function and file) is on the stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, samples = line.rpartition(" ")
        total += int(samples)
        for frame in {re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")}:
            inclusive[frame] += int(samples)
    return [(share / total, frame) for frame, share in inclusive.most_common(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", choices=sorted(PATHS))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--auth-off", action="store_true", help="AUTH_DISABLED=true: no token check")
    args = parser.parse_args()
    app, route = PATHS[args.path]
    out = Path(tempfile.gettempdir()) / f"studytrack-profile-{args.path}.txt"
    with tempfile.TemporaryDirectory(prefix="studytrack-profile-") as home:
        server, url = start_embedded_database(Path(home), timescaledb=False)
        try:
            run_migrations(url, replace(get_settings(), timescaledb="off"))
            token = "unused" if args.auth_off else make_token(url)
            if args.path == "dashboard":
                bulk_load(url, CHART_EVENTS, seed=CHART_EVENTS)
                rebuild_rollup(url)
            env = os.environ | {"DATABASE_URL": url, "AUTH_DISABLED": str(args.auth_off).lower(), "TIMESCALEDB": "off"}
            env |= {"LOG_LEVEL": "warning", "PYTHONPATH": str(REPO), "BENCH_TOKEN": token}
            command = [sys.executable, "-m", "gunicorn", "-c", "python:studytrack.web.gunicorn_conf", "-w", "1"]
            command += ["-b", "127.0.0.1:8811", app]  # the access log to stdout, as deployed
            gunicorn = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
            try:
                time.sleep(5)
                worker = subprocess.run(["pgrep", "-P", str(gunicorn.pid)], capture_output=True, text=True, check=True)
                get = ["-H", f"Authorization: Bearer {token}"]
                requests = get if args.path == "dashboard" else ["-s", "bench/post.lua"]
                load = ["wrk", "-t1", "-c32", f"-d{args.seconds + 4}s", *requests]
                wrk = subprocess.Popen(
                    [*load, f"http://127.0.0.1:8811{route}"], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True
                )
                time.sleep(2)
                spy = [str(Path(sys.executable).parent / "py-spy"), "record", "-d", str(args.seconds), "-r", "250"]
                spy += ["-p", worker.stdout.split()[0], "-f", "raw", "-o", str(out), "--nonblocking"]
                subprocess.run(spy, capture_output=True, check=True)
                report = wrk.communicate()[0]
            finally:
                gunicorn.terminate()
                gunicorn.wait(timeout=40)
        finally:
            stop_embedded_database(server)
    print(next(line for line in report.splitlines() if "Requests/sec" in line).strip(), f"({args.path}, 1 worker)")
    for share, frame in top_frames(out, args.top):
        print(f"{share:6.1%}  {frame}")
    print(f"raw samples: {out}")


if __name__ == "__main__":
    main()

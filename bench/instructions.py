"""Instructions per request of the bare app and our no-op, in-process under callgrind: exact, unlike time.

CPU time per request swings 5-10% between rounds on these shared cores, more than a middleware costs.
Instructions do not: each variant's ASGI app is called in-process (no server, no socket, no database; the
token already cached) with `bench/post.lua`'s body, under `valgrind --tool=callgrind`, for two request
counts; the difference over the extra requests is the cost of one. Variants: `bare` (bench/bare.py),
`noop` (POST /bench/noop with a token), `noop-auth-off` (AUTH_DISABLED=true), `noop-no-frame` (without
`web/frame.py`'s middleware). The server's own work per request (parsing, sockets, the access log) is not
counted: it is the same for every variant.

Run: .venv/bin/python -m bench.instructions [--tree PATH] [--requests 500]   (about a minute per variant)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import logging
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VARIANTS = {
    "bare": {},
    "noop": {},
    "noop-auth-off": {"AUTH_DISABLED": "true"},
    "noop-no-frame": {"BENCH_WITHOUT_FRAME": "1"},
}
TOKEN = "st_bench-instructions-token"
BODY = b'{"id":"0a1b2c3d-0001-4001-8abc-000000000001","tag":"cka","minutes":25,"user_id":"u17","source":"wrk"}'
WARM_UP = 200


def _scope(path: str) -> dict[str, Any]:
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        (b"authorization", f"Bearer {TOKEN}".encode()),
    ]
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5555), "scheme": "http", "method": "POST",
        "root_path": "", "path": path, "raw_path": path.encode(), "query_string": b"", "headers": headers,
        "state": {},
    }  # fmt: skip


def _app(variant: str) -> tuple[Any, str]:
    if variant == "bare":
        from bench.bare import app as bare

        return bare, "/bench/bare"
    from bench.app import create_bench_app
    from studytrack.auth.tokens import Principal

    app = create_bench_app()
    check = getattr(app.state, "token_check", None)
    cache = check.cache if check is not None else app.state.token_cache  # a `--tree` from before TokenCheck
    cache[hashlib.sha256(TOKEN.encode()).digest()] = Principal(name="bench", scopes=frozenset({"ingest"}))
    if os.environ.get("BENCH_WITHOUT_FRAME"):
        app.user_middleware = [m for m in app.user_middleware if getattr(m.cls, "__name__", "") != "RequestFrame"]
    return app, "/bench/noop"


def serve(variant: str, requests: int) -> None:
    """The child's side: `requests` in-process requests after a warm-up, each in a task of its own."""
    import uvloop

    logging.disable(logging.CRITICAL)
    app, path = _app(variant)
    gc.freeze()  # as gunicorn_conf.post_worker_init
    statuses: set[int] = set()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(message["status"])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(WARM_UP + requests):
            await loop.create_task(app(_scope(path), receive, send))

    uvloop.run(main())
    if statuses != {201}:
        raise SystemExit(f"{variant}: answered {sorted(statuses)}, not 201")


def instructions(tree: Path, variant: str, requests: int) -> int:
    """Instructions callgrind counted for a whole child run."""
    env = os.environ | VARIANTS[variant] | {"PYTHONPATH": f"{tree}:{tree / 'src'}"}
    env.setdefault("DATABASE_URL", "postgresql://bench@/unused?host=/nonexistent")  # never connected to
    with tempfile.TemporaryDirectory() as scratch:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out"]
        # This file, run as a script: the tree's own `bench` and `studytrack` are imported (PYTHONPATH).
        command += [sys.executable, __file__, "--serve", variant, "--requests", str(requests)]
        result = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def per_request(tree: Path, variant: str, requests: int) -> float:
    few, many = instructions(tree, variant, requests), instructions(tree, variant, 3 * requests)
    return (many - few) / (2 * requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, help="also count this checkout's code (e.g. a git worktree)")
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.requests)
        return
    trees = {"this": REPO} | ({"tree": args.tree.resolve()} if args.tree else {})
    jobs = [(label, tree, variant) for label, tree in trees.items() for variant in VARIANTS]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = list(pool.map(lambda job: per_request(job[1], job[2], args.requests), jobs))
    bare = {label: count for (label, _, variant), count in zip(jobs, counts, strict=True) if variant == "bare"}
    for (label, _, variant), count in zip(jobs, counts, strict=True):
        ratio = bare[label] / count
        print(f"{label:5} {variant:14} {count / 1000:7.1f}k instructions/request  (bare/this {ratio:.3f})")


if __name__ == "__main__":
    main()

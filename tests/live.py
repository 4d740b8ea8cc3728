"""A real server for tests that need one: gunicorn with Uvicorn workers, the production configuration, a free
loopback port and a fresh plain PostgreSQL database; plus an admin token made by the CLI."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests import REPO
from tests.databases import create_database

START_SECONDS = 60


@dataclasses.dataclass
class LiveServer:
    url: str
    database_url: str
    log: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_database(server_url: str, settings: Settings, prefix: str) -> str:
    """A new, migrated database in plain PostgreSQL mode."""
    url = create_database(server_url, prefix)
    run_migrations(url, dataclasses.replace(settings, timescaledb="off"))
    return url


def admin_token(database_url: str, name: str) -> str:
    """`studytrack token create --scope admin`: the secret is the last line it prints."""
    env = os.environ | {"DATABASE_URL": database_url, "TIMESCALEDB": "off"}
    command = [sys.executable, "-m", "studytrack", "token", "create", "--name", name, "--scope", "admin"]
    created = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    return created.stdout.strip().splitlines()[-1]


def wait_healthy(
    url: str, process: subprocess.Popen[Any], output: Callable[[], str], seconds: float = START_SECONDS
) -> None:
    """Until `url`/healthz answers 200; fails with the server's output if it exits or the time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited ({process.returncode}):\n{output()[-3000:]}"
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer /healthz in {seconds}s:\n{output()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # gunicorn: graceful stop of the master and its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def gunicorn(database_url: str, log: Path, *, workers: int = 1, **env: str) -> Iterator[LiveServer]:
    """`studytrack.web.app:create_app()` under gunicorn (stdout and stderr to `log`) until the block ends."""
    port = free_port()
    environment = os.environ | {"DATABASE_URL": database_url, "TIMESCALEDB": "off", "LOG_LEVEL": "info"} | env
    command = [sys.executable, "-m", "gunicorn", "-c", "python:studytrack.web.gunicorn_conf"]
    command += ["-w", str(workers), "-b", f"127.0.0.1:{port}", "studytrack.web.app:create_app()"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, log, process)
    try:
        wait_healthy(server.url, process, server.output)
        yield server
    finally:
        _stop(process)

"""`studytrack serve` on the embedded default: one command, a real PostgreSQL, data that survives restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from studytrack.cli import build_parser
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.timescaledb_build import TIMESCALEDB_VERSION
from tests import REPO
from tests.live import free_port, wait_healthy


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(data_dir) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture
def embedded_home() -> Iterator[Path]:
    """Not under pytest's tmp_path: a pytest session starting meanwhile makes that tree owner-only, and the
    server (its own system user when we are root) could no longer reach it."""
    with tempfile.TemporaryDirectory(prefix="studytrack-cli-") as parent:
        yield Path(parent) / "home"


@contextmanager
def serving(
    home: Path, stop: signal.Signals = signal.SIGTERM, output: list[str] | None = None, **settings: str
) -> Iterator[str]:
    """`studytrack serve` until the block ends, then `stop` to its pid alone; its output goes to `output`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_HOST", "TIMESCALEDB")}
    env |= {"STUDYTRACK_HOME": str(home), **settings}
    process = subprocess.Popen(
        [sys.executable, "-m", "studytrack", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # Its output is a pipe: read only once it has exited (reading a running server would block).
        wait_healthy(base, process, lambda: process.communicate()[0] if process.poll() is not None else "")
        yield base
    finally:
        process.send_signal(stop)
        try:
            printed, _ = process.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    if output is not None:
        output.append(printed)
    assert process.returncode == 0, printed[-3000:]


def test_serve_starts_an_embedded_database_whose_data_survives_restarts(embedded_home: Path) -> None:
    home = embedded_home
    with serving(home) as base:
        token = (home / "admin-token").read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{base}/api/events/", json={"tag": "cka", "minutes": 25}, headers=auth, timeout=10)
        assert created.status_code == 201
        assert httpx.get(f"{base}/healthz").json()["mode"] == "timescaledb"
    assert postgres_processes(home) == [], "the embedded database must stop with the service"
    assert (home / "admin-token").stat().st_mode & 0o777 == 0o600

    with serving(home) as base:
        event = httpx.get(f"{base}/api/events/{created.json()['id']}/", headers=auth, timeout=10)
        assert event.status_code == 200
        assert httpx.get(f"{base}/api/events/{created.json()['id']}/", timeout=10).status_code == 401
    assert (home / "pgdata" / "PG_VERSION").exists()


def test_token_commands_work_against_the_embedded_database_while_it_serves(embedded_home: Path) -> None:
    home = embedded_home
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_HOST")}
    env["STUDYTRACK_HOME"] = str(home)

    def studytrack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "studytrack", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
        )

    with serving(home) as base:
        created = studytrack(
            "token", "create", "--name", "ana-app", "--scope", "ingest", "--scope", "read", "--user-id", "ana"
        )
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        auth = {"Authorization": f"Bearer {token}"}
        response = httpx.post(f"{base}/api/events/", json={"tag": "cka", "minutes": 5}, headers=auth, timeout=10)
        assert response.json()["user_id"] == "ana"
        listed = studytrack("token", "list")
        assert "ana-app" in listed.stdout
        assert token not in listed.stdout
        assert studytrack("token", "revoke", "ana-app").returncode == 0
    assert postgres_processes(home) == []


def test_serve_on_the_embedded_default_runs_timescaledb_with_its_scheduler(embedded_home: Path) -> None:
    home = embedded_home
    with serving(home) as base:
        health = httpx.get(f"{base}/healthz").json()
        assert (health["mode"], health["timescaledb"]) == ("timescaledb", TIMESCALEDB_VERSION)
        server, url = start_embedded_database(home)  # attaches to the running server, as the CLI does
        try:
            with psycopg.connect(url) as conn:
                workers = conn.execute(
                    "SELECT application_name FROM pg_stat_activity WHERE backend_type LIKE 'TimescaleDB%'"
                ).fetchall()
                telemetry = conn.execute("SHOW timescaledb.telemetry_level").fetchone()
        finally:
            stop_embedded_database(server)
        assert any("Scheduler" in name for (name,) in workers), workers
        assert telemetry == ("off",)


def test_timescaledb_off_serves_the_embedded_default_in_plain_mode(embedded_home: Path) -> None:
    with serving(embedded_home, TIMESCALEDB="off") as base:
        assert httpx.get(f"{base}/healthz").json()["mode"] == "postgresql"


def test_serve_stops_within_seconds_on_sigint_to_its_pid_alone(embedded_home: Path) -> None:
    output: list[str] = []
    with serving(embedded_home, signal.SIGINT, output, TIMESCALEDB="off") as base:
        assert httpx.get(f"{base}/healthz").status_code == 200
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10, output[0][-3000:]
    assert "Perhaps out of memory" not in output[0]
    assert postgres_processes(embedded_home) == [], "the embedded database must stop with the service"


@pytest.mark.parametrize("user_id", ["", "   ", "a\tb", "x" * 129])
def test_token_create_refuses_a_user_id_the_api_would_refuse(user_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["token", "create", "--name", "n", "--scope", "read", "--user-id", user_id])
    assert exited.value.code == 2
    assert "--user-id" in capsys.readouterr().err


def test_token_create_trims_the_user_id_as_the_api_does() -> None:
    args = build_parser().parse_args(["token", "create", "--name", "n", "--scope", "read", "--user-id", " bob "])
    assert args.user_id == "bob"

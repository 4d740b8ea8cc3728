"""boot/docker-run.sh, for real: lint it, then run it against the test PostgreSQL as the image would.

Each run is a new session (its own process group) writing to a log file; teardown kills every
group, so no gunicorn outlives a test. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.databases import create_database
from tests.deploy.support import BOOT_SCRIPT, VENV_BIN, find_tool, parse_dockerfile
from tests.environment import clean_environ
from tests.live import free_port

GRACEFUL_TIMEOUT = 10  # seconds; passed to the script (its default, for deploys, is 30)
SECRET = "s3cr3t-Pa55word"
UPGRADE = re.compile(r"Running upgrade [^,\n]*")  # Alembic: "Running upgrade 0001 -> 0002, ..."
UNREACHABLE = f"postgresql://studytrack:{SECRET}@127.0.0.1:9/studytrack"  # discard port: refused


@dataclass
class Boot:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"boot script still running after {timeout}s:\n{self.output()}")


Launcher = Callable[..., Boot]


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_members(pgid: int) -> set[int]:
    """Live (non-zombie) processes in a process group."""
    members = set()
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.name))
    return members


def wait_until(condition: Callable[[], bool], timeout: float, what: str, boot: Boot | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}" + (f":\n{boot.output()}" if boot else ""))
        time.sleep(0.2)


def wait_healthy(boot: Boot, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if boot.process.poll() is not None:
            pytest.fail(f"boot script exited ({boot.process.returncode}) before serving:\n{boot.output()}")
        try:
            response = httpx.get(f"{boot.base_url}/healthz", timeout=3)
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"/healthz not 200 after {timeout}s:\n{boot.output()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group, then SIGKILL whatever is left of it; return once it is gone."""
    pgid = process.pid  # start_new_session: the script leads its own group
    for sig, grace in ((signal.SIGTERM, GRACEFUL_TIMEOUT + 5.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the leader, so it does not linger as a zombie
            if not group_members(pgid):
                break
            time.sleep(0.1)
        else:
            continue
        break
    process.wait(timeout=10)


@pytest.fixture
def boot(tmp_path: Path) -> Iterator[Launcher]:
    """Start boot/docker-run.sh with the given arguments and settings (PORT: a free one); stopped at teardown."""
    started: list[Boot] = []

    def launch(*args: str, **settings: str) -> Boot:
        port = free_port()
        log = tmp_path / f"boot-{len(started)}.log"
        env = clean_environ()
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PORT=str(port),
            GRACEFUL_TIMEOUT=str(GRACEFUL_TIMEOUT),
            LOG_LEVEL="info",
        )
        env.update(settings)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                ["bash", str(BOOT_SCRIPT), *args],
                cwd=tmp_path,  # no .env here: only the environment configures the app, as in the image
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(Boot(process, port, log))
        return started[-1]

    yield launch
    for started_boot in started:
        stop(started_boot.process)


# ---- static -------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", ["docker-run.sh", "local.sh", "venv.sh", "studytrack"])
def test_shellcheck_passes(script: str) -> None:
    shellcheck = find_tool("shellcheck")
    result = subprocess.run(
        [shellcheck, "--shell=bash", "--severity=style", "-x", str(BOOT_SCRIPT.parent / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_is_strict_and_never_expands_credentials() -> None:
    text = BOOT_SCRIPT.read_text(encoding="utf-8")
    assert "set -euo pipefail" in text
    assert not re.search(r"^\s*set -[a-z]*x", text, re.MULTILINE), "xtrace would print the environment"
    assert not re.search(r"\$\{?(DATABASE_URL|POSTGRES_PASSWORD)", text)
    assert re.search(r"^exec gunicorn ", text, re.MULTILINE), "gunicorn must replace the shell (signals)"


# ---- the real thing -------------------------------------------------------------------------------


def test_boot_migrates_once_serves_on_two_workers_and_stops_gracefully(boot: Launcher, server_url: str) -> None:
    database_url = create_database(server_url, "boot")
    server = boot(DATABASE_URL=database_url, WEB_CONCURRENCY="2")

    health = wait_healthy(server)
    assert (health["status"], health["database"]) == ("ok", "ok")
    created_token = subprocess.run(
        [sys.executable, "-m", "studytrack", "token", "create", "--name", "boot-test", "--scope", "admin"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    auth = {"Authorization": f"Bearer {created_token.stdout.strip().splitlines()[-1]}"}
    with httpx.Client(base_url=server.base_url, timeout=10, headers=auth) as client:
        for _ in range(3):
            created = client.post("/api/events/", json={"tag": "cka", "minutes": 25})
            assert created.status_code == 201, created.text
        listed = client.get("/api/events/")
        assert listed.status_code == 200, listed.text
        assert "cka" in listed.text

    # gunicorn replaced the shell (exec): the script's pid is the master, with two workers of its own
    master = server.process.pid
    worker_boot = re.compile(r"Booting worker with pid: (\d+)")
    wait_until(lambda: len(worker_boot.findall(server.output())) >= 2, 30, "two workers", server)
    workers = {int(pid) for pid in worker_boot.findall(server.output())}
    assert len(workers) == 2
    assert master not in workers
    for pid in workers:
        fields = proc_stat(pid)
        assert fields is not None, f"worker {pid} is gone"
        assert int(fields[1]) == master, f"worker {pid} is not the master's child"

    def workers_started() -> set[int]:
        return {int(p) for p in re.findall(r"\[(\d+)\] \[INFO\] Application startup complete", server.output())}

    wait_until(lambda: workers_started() == workers, 30, "both workers' application start-up", server)

    output = server.output()
    assert f"Listening at: http://0.0.0.0:{server.port} ({master})" in output
    assert output.count("[boot] migrating the database schema") == 1
    upgrades = UPGRADE.findall(output)
    assert len(re.findall(r"Running upgrade\s+-> 0001", output)) == 1
    assert len(upgrades) == len(set(upgrades)), "a revision was applied twice"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*), to_regclass('events') IS NOT NULL FROM alembic_version").fetchone()
    assert row == (1, True)

    # The image's HEALTHCHECK command, verbatim from the Dockerfile, against this server and a dead port.
    check = parse_dockerfile().final.all("HEALTHCHECK")[0].args.split(" CMD ", 1)[1]
    probe = json.loads(check)
    probe_env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    healthy = subprocess.run(probe, env={**probe_env, "PORT": str(server.port)}, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr
    dead = subprocess.run(probe, env={**probe_env, "PORT": str(free_port())}, capture_output=True, timeout=30)
    assert dead.returncode != 0

    server.process.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert server.wait_exit(GRACEFUL_TIMEOUT + 10) == 0, server.output()
    assert time.monotonic() - stopping < GRACEFUL_TIMEOUT
    assert "Shutting down: Master" in server.output()
    wait_until(lambda: not group_members(master), 10, "the workers to exit", server)
    assert SECRET not in server.output()


def test_four_boots_at_once_on_a_fresh_database_migrate_it_exactly_once(boot: Launcher, server_url: str) -> None:
    database_url = create_database(server_url, "boot4")
    servers = [boot(DATABASE_URL=database_url, WEB_CONCURRENCY="1") for _ in range(4)]
    for server in servers:
        assert wait_healthy(server, timeout=120)["status"] == "ok"

    outputs = [server.output() for server in servers]
    assert sum(len(re.findall(r"Running upgrade\s+-> 0001", out)) for out in outputs) == 1
    # one of the four did every upgrade; the others waited on the lock and found nothing to do
    assert sorted(bool(UPGRADE.findall(out)) for out in outputs) == [False, False, False, True]
    upgrades = [line for out in outputs for line in UPGRADE.findall(out)]
    assert len(upgrades) == len(set(upgrades))
    for out in outputs:
        assert out.count("[boot] migrating the database schema") == 1
        assert "database schema is up to date" in out
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)

    for server in servers:
        server.process.send_signal(signal.SIGTERM)
    for server in servers:
        assert server.wait_exit(GRACEFUL_TIMEOUT + 10) == 0, server.output()


def test_three_pre_deploy_migrations_at_once_migrate_once_store_admin_token_once_and_exit(
    boot: Launcher, server_url: str
) -> None:
    """Railway's pre-deploy step: `docker-run.sh migrate` waits, migrates, stores ADMIN_TOKEN and exits."""
    database_url = create_database(server_url, "predeploy")
    token = f"st_{'ab12' * 4}_{'Zq9-x_Y8wV7uT6sR5pO4nM3lK2jI1hG0fEdCbA-Zq9x'}"
    runs = [boot("migrate", DATABASE_URL=database_url, ADMIN_TOKEN=token) for _ in range(3)]
    assert [run.wait_exit(90) for run in runs] == [0, 0, 0], [run.output() for run in runs]

    outputs = [run.output() for run in runs]
    assert sum(len(re.findall(r"Running upgrade\s+-> 0001", out)) for out in outputs) == 1
    for out in outputs:
        assert "[boot] migrate only: done" in out
        assert "starting gunicorn" not in out
        assert token.split("_", 2)[2] not in out
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT name, scopes FROM api_tokens").fetchall()
    assert rows == [("ADMIN_TOKEN", ["admin"])]


@pytest.mark.parametrize("args", [("serve",), ("migrate", "now"), ("/bin/bash", "/app/boot/docker-run.sh", "migrate")])
def test_unexpected_arguments_fail_at_once_instead_of_serving(boot: Launcher, args: tuple[str, ...]) -> None:
    run = boot(*args, DATABASE_URL=UNREACHABLE)
    assert run.wait_exit(20) == 1
    assert "unknown arguments" in run.output()
    assert "waiting" not in run.output()


def test_without_a_database_setting_it_refuses_to_start(boot: Launcher) -> None:
    server = boot(DB_WAIT_SECONDS="30")
    assert server.wait_exit(20) == 1
    output = server.output()
    assert "no database configured" in output
    assert "embedded" not in output.lower()
    assert "starting gunicorn" not in output


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"DATABASE_URL": "mysql://root@127.0.0.1/db"}, "DATABASE_URL must start with"),
        (
            {"DATABASE_URL": UNREACHABLE, "WEB_CONCURRENCY": "many"},
            "WEB_CONCURRENCY must be a positive integer",
        ),
        ({"DATABASE_URL": UNREACHABLE, "DB_WAIT_SECONDS": "soon"}, "DB_WAIT_SECONDS must be"),
    ],
)
def test_bad_settings_fail_fast(boot: Launcher, settings: dict[str, str], message: str) -> None:
    server = boot(**settings)
    assert server.wait_exit(20) == 1
    assert message in server.output()


def test_an_unreachable_database_is_given_up_on_after_db_wait_seconds(boot: Launcher) -> None:
    started = time.monotonic()
    server = boot(DATABASE_URL=UNREACHABLE, DB_WAIT_SECONDS="2")
    assert server.wait_exit(30) == 1
    assert time.monotonic() - started < 20
    output = server.output()
    assert "database still unreachable after 2s" in output
    assert "OperationalError" in output
    assert SECRET not in output
    assert "starting gunicorn" not in output


def test_sigterm_while_waiting_for_the_database_stops_at_once(boot: Launcher) -> None:
    server = boot(DATABASE_URL=UNREACHABLE, DB_WAIT_SECONDS="60")
    wait_until(lambda: "database not reachable yet" in server.output(), 20, "the first probe", server)
    server.process.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert server.wait_exit(10) == 143
    assert time.monotonic() - stopping < 5
    assert "stop requested before the server started" in server.output()
    wait_until(lambda: not group_members(server.process.pid), 10, "the probe to exit", server)

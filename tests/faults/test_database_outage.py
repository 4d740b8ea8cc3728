"""PostgreSQL stops under load, then starts again: fast 503s while it is down, recovery by itself, nothing lost.

The database is an embedded PostgreSQL of this test's own (in a temp dir), stopped with `pg_ctl stop -m fast`
and started again on the same data directory and socket.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from studytrack.config import Settings
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
from studytrack.database.migrate import run_migrations
from studytrack.database.wheel import postgres_bin_path
from tests.databases import backend_mode, create_database
from tests.faults.harness import Load, account, create_admin_token, gunicorn, make_events, record, wait_until

DB_TIMEOUT_SECONDS = 2
FAST = 8.0  # seconds: the most any answer may take while the database is down
OUTAGE = 6.0  # seconds the database stays down
CLIENTS = 8


@pytest.fixture
def own_database(backend: str) -> Iterator[Any]:
    """An embedded PostgreSQL (TimescaleDB preloaded on that backend) that only this test uses (so it may stop it).

    Its home is not under pytest's tmp_path: a pytest session starting meanwhile resets the permissions of
    that tree to owner-only, and the server (its own system user when we are root) could no longer reach it.
    """
    with tempfile.TemporaryDirectory(prefix="studytrack-outage-") as home:
        handle, _ = start_embedded_database(Path(home), timescaledb=backend == "timescaledb")
        try:
            yield handle
        finally:
            stop_embedded_database(handle)


def stop_database(handle: Any) -> None:
    """`pg_ctl stop -m fast`: open sessions are cut, as in a crash or failover of the database host."""
    subprocess.run(
        [str(postgres_bin_path() / "pg_ctl"), "-D", str(handle.pgdata), "-w", "-m", "fast", "stop"],
        user=handle.system_user,  # the server's own system user when the tests run as root
        stdout=subprocess.DEVNULL,
        timeout=30,
        check=True,
    )


def start_database(handle: Any) -> None:
    handle.ensure_postgres_running()  # pg_ctl start on the same data directory and socket


def probe_health(base_url: str) -> tuple[int, float, dict[str, Any]]:
    started = time.monotonic()
    response = httpx.get(f"{base_url}/healthz", timeout=30)
    return response.status_code, time.monotonic() - started, response.json()


def test_a_database_outage_is_a_fast_503_and_the_service_recovers_by_itself(
    own_database: Any, backend: str, settings: Settings, tmp_path: Path
) -> None:
    server_uri = own_database.get_uri()
    url = create_database(server_uri, "outage")
    run_migrations(url, backend_mode(backend, settings))
    token = create_admin_token(url, "fault-outage", tmp_path)
    events = make_events(3000, tag="outage")

    with gunicorn(url, workers=2, workdir=tmp_path, DB_TIMEOUT_SECONDS=str(DB_TIMEOUT_SECONDS)) as server:
        load = Load(
            server.base_url, token, events, clients=CLIENTS, deadline=50, timeouts=(15.0,), backoff=0.2, pace=0.02
        )
        with load:
            wait_until(lambda: load.acknowledged >= 100, 20, "100 acknowledged events before the outage")
            acknowledged_before = load.acknowledged
            stop_database(own_database)
            stopped = time.monotonic()

            health_down = [probe_health(server.base_url)]
            while time.monotonic() - stopped < OUTAGE:
                health_down.append(probe_health(server.base_url))
                time.sleep(0.5)
            restarting = time.monotonic()  # from here on the database may answer again
            start_database(own_database)
            restarted = time.monotonic()
            assert own_database.get_uri() == server_uri, "the restarted server must answer on the same socket"

            health_recovery = wait_until(lambda: probe_health(server.base_url)[0] == 200, 30, "/healthz to answer 200")
            wait_until(
                lambda: any(a.outcome in ("200", "201") and a.started >= restarted for a in load.tally.attempts),
                30,
                "a write to succeed after the restart",
            )
            wait_until(lambda: load.acknowledged >= acknowledged_before + 200, 30, "200 more acknowledged events")
            load.stop_sending()
            tally = load.join()

    during = [a for a in tally.attempts if a.started >= stopped + 0.5 and a.started + a.seconds < restarting]
    after = [a for a in tally.attempts if a.started >= restarted and a.outcome in ("200", "201")]
    figures = account(url, tally, events) | {
        "clients": CLIENTS,
        "db_timeout_seconds": DB_TIMEOUT_SECONDS,
        "outage_seconds": round(restarted - stopped, 2),
        "requests_while_down": len(during),
        "slowest_answer_while_down_seconds": round(max(a.seconds for a in during), 2),
        "health_while_down": sorted({status for status, _, _ in health_down}),
        "slowest_health_while_down_seconds": round(max(seconds for _, seconds, _ in health_down), 2),
        "health_recovery_seconds": round(health_recovery, 2),
        "write_recovery_seconds": round(min(a.started + a.seconds for a in after) - restarted, 2),
    }
    record("database_outage", figures)

    assert during, "no request was answered while the database was down"
    assert {a.outcome for a in during} == {"503"}, figures["outcomes"]
    assert all(a.seconds < FAST for a in during), figures["slowest_answer_while_down_seconds"]
    for attempt in during:
        assert attempt.body["code"] == "database_unavailable"
        assert set(attempt.body) == {"status", "code", "message", "details"}
    assert figures["health_while_down"] == [503]
    assert all(body["status"] == "unavailable" for _, _, body in health_down)
    assert figures["slowest_health_while_down_seconds"] < FAST
    assert figures["health_recovery_seconds"] < 15
    assert figures["write_recovery_seconds"] < 15
    assert figures["lost"] == 0
    assert figures["duplicates"] == 0
    assert figures["refused"] == 0, tally.refused
    assert figures["acknowledged"] == figures["sent"], "every event sent is acknowledged once the database is back"
    assert "500" not in figures["outcomes"], figures["outcomes"]

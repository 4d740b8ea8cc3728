"""A replica, then the primary, stop and start again under gunicorn: reads answer throughout, writes fail fast
while the primary is down, and everything recovers by itself.

A real primary and hot standby of this test's own (`tests/replicas/cluster.py`), stopped with `pg_ctl stop -m
fast` and started again on the same data directories and sockets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from studytrack.auth.tokens import create_token
from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests.databases import backend_mode
from tests.faults.harness import create_admin_token, gunicorn, record, wait_until
from tests.replicas.cluster import Cluster, replicated_cluster, start_server, stop_server, wait_replayed

DB_TIMEOUT_SECONDS = 2
FAST = DB_TIMEOUT_SECONDS + 2.0  # seconds: the most a write may take to fail while the primary is down
READ_SECONDS = 2.0  # the most a read may take while a server is down (a replica's connection wait is 1 s)
RECOVERY = 20.0  # a standby's WAL receiver retries every 5 s


def reads_from(client: httpx.Client, target: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "studytrack_db_reads_total" and sample.labels == {"target": target}:
                return float(sample.value)
    return 0.0


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def health(client: httpx.Client) -> dict[str, Any]:
    return dict(client.get("/healthz").json())


def replica_state(client: httpx.Client) -> str:
    return str(health(client)["replicas"][0]["state"])


def post(client: httpx.Client, minutes: int) -> httpx.Response:
    return client.post("/api/events/", json={"tag": "outage", "minutes": minutes})


def reads_while(client: httpx.Client, seconds: float, token: str | None = None) -> list[tuple[int, float]]:
    """GET /api/stats/ over and over for `seconds`: (status, seconds) of each."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response, took = timed(lambda: client.get("/api/stats/", headers=headers))
        answers.append((response.status_code, took))
        time.sleep(0.05)
    return answers


def prepared(cluster: Cluster, backend: str, settings: Settings, workdir: Path) -> tuple[str, str, str]:
    """A migrated database on the primary and two admin tokens, all replayed on the standby."""
    with psycopg.connect(cluster.primary.get_uri(), autocommit=True) as conn:
        conn.execute('CREATE DATABASE "outage"')
    url = cluster.primary_url("outage")
    run_migrations(url, backend_mode(backend, settings))
    token = create_admin_token(url, "replica-outage", workdir)
    unused_token = asyncio.run(_create_token(url, "first-use"))  # first checked while the primary is down
    wait_replayed(cluster)
    return url, token, unused_token


async def _create_token(url: str, name: str) -> str:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        return await create_token(conn, name=name, scopes=["read"])


def test_reads_answer_through_a_replica_outage_and_a_primary_outage_and_both_recover_by_themselves(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    figures: dict[str, Any] = {"backend": backend}
    with replicated_cluster(timescaledb=backend == "timescaledb") as cluster:
        url, token, unused_token = prepared(cluster, backend, settings, tmp_path)
        replica = {"DATABASE_REPLICA_URL": cluster.standby_url("outage"), "DB_TIMEOUT_SECONDS": str(DB_TIMEOUT_SECONDS)}
        with (
            gunicorn(url, workers=1, workdir=tmp_path, **replica) as server,
            httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client,
        ):
            assert post(client, 10).status_code == 201
            wait_until(lambda: replica_state(client) == "ok", 10, "the replica to serve")
            before = reads_from(client, "replica-1")
            assert client.get("/api/stats/").status_code == 200
            assert reads_from(client, "replica-1") == before + 1, "reads come from the replica"

            # The standby stops: reads go to the primary, writes carry on.
            stop_server(cluster.standby)
            replica_down = reads_while(client, 2.0)
            assert replica_state(client) == "unreachable"
            assert health(client)["status"] == "ok"
            assert post(client, 20).status_code == 201
            start_server(cluster.standby)
            figures["replica_recovery_seconds"] = round(
                wait_until(lambda: replica_state(client) == "ok", RECOVERY, "the replica to serve again"), 2
            )
            before = reads_from(client, "replica-1")
            figures["replica_reads_back_seconds"] = round(
                wait_until(
                    lambda: client.get("/api/stats/").status_code == 200 and reads_from(client, "replica-1") > before,
                    RECOVERY,
                    "a read from the replica again",
                ),
                2,
            )

            # The primary stops: writes fail fast, reads (and a token never checked before) answer from the replica.
            stop_server(cluster.primary)
            wait_until(lambda: health(client)["status"] == "degraded", 10, "/healthz to report degraded")
            health_down, health_seconds = timed(lambda: client.get("/healthz"))
            write_down, write_seconds = timed(lambda: post(client, 30))
            primary_down = reads_while(client, 1.0)
            first_use = client.get("/api/stats/", headers={"Authorization": f"Bearer {unused_token}"})
            assert first_use.status_code == 200, first_use.text
            assert first_use.json()["total_sessions"] == 2, "the replica holds every write acknowledged before"
            start_server(cluster.primary)
            figures["write_recovery_seconds"] = round(
                wait_until(lambda: post(client, 40).status_code == 201, RECOVERY, "a write to succeed again"), 2
            )
            wait_until(lambda: health(client)["status"] == "ok", RECOVERY, "/healthz to report ok")
            wait_until(lambda: replica_state(client) == "ok", RECOVERY, "the replica to catch up again")

    figures |= {
        "reads_while_replica_down": len(replica_down),
        "slowest_read_while_replica_down_seconds": round(max(took for _, took in replica_down), 2),
        "reads_while_primary_down": len(primary_down),
        "slowest_read_while_primary_down_seconds": round(max(took for _, took in primary_down), 2),
        "write_while_primary_down_seconds": round(write_seconds, 2),
        "health_while_primary_down_seconds": round(health_seconds, 2),
    }
    record(f"replica_outage_{backend}", figures)
    assert {status for status, _ in replica_down} == {200}
    assert len(replica_down) >= 5, "after the first read, the rest go straight to the primary"
    assert {status for status, _ in primary_down} == {200}
    assert figures["slowest_read_while_replica_down_seconds"] < READ_SECONDS
    assert figures["slowest_read_while_primary_down_seconds"] < READ_SECONDS
    assert (health_down.status_code, health_down.json()["status"]) == (200, "degraded")
    assert figures["health_while_primary_down_seconds"] < 1.0, "the monitor's finding: no probe to wait for"
    assert write_down.status_code == 503, write_down.text
    assert write_down.json()["code"] == "database_unavailable"
    assert figures["write_while_primary_down_seconds"] < FAST

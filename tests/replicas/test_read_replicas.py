"""Reads from a hot standby, writes to the primary: on a real primary and standby, plain and TimescaleDB.

Replay is paused on the standby to make the replica a known step behind: an answer without the write came
from the replica, one with it from the primary.
"""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from studytrack.config import Settings
from studytrack.web.app import create_app
from tests.databases import Database
from tests.environment import clean_environ
from tests.helpers import Session, insert_sessions
from tests.replicas.cluster import Cluster, hung, replay_paused, wait_replayed
from tests.replicas.conftest import lag_bound, replica_settings, replicated_app

PRIMARY = {"X-Read-From": "primary"}
NOW = datetime.now(UTC).replace(microsecond=0)
RANGE = f"start={(NOW - timedelta(days=30)).date()}&end={(NOW + timedelta(days=2)).date()}"
# Every read route: chart, CSV, session list, stats, badge and the drop-in's list and stats.
READS = [
    f"/api/events/?duration=1%20day&{RANGE}",
    f"/api/events/?duration=1%20week&tz=Europe/Berlin&format=csv&{RANGE}",
    "/api/sessions/",
    "/api/stats/",
    "/api/badge.svg?duration=1%20year",
    "/sessions",
    "/stats",
]


def reads_from(client: TestClient, target: str) -> float:
    """`studytrack_db_reads_total{target=...}` as /metrics shows it."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "studytrack_db_reads_total" and sample.labels == {"target": target}:
                return float(sample.value)
    return 0.0


def replica_health(client: TestClient) -> dict[str, Any]:
    body = client.get("/healthz").json()
    assert len(body["replicas"]) == 1, body
    return dict(body["replicas"][0])


def wait_for_state(client: TestClient, state: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (health := replica_health(client))["state"] != state:
        assert time.monotonic() < deadline, f"the replica did not become {state} within {timeout} s: {health}"
        time.sleep(0.1)
    return health


def post_session(client: TestClient, minutes: int) -> str:
    created = client.post("/api/events/", json={"tag": "cka", "minutes": minutes, "time": NOW.isoformat()})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_every_read_comes_from_the_replica_and_x_read_from_primary_sees_your_own_write(
    replicated: TestClient, cluster: Cluster
) -> None:
    post_session(replicated, 20)
    wait_replayed(cluster)
    before = {path: replicated.get(path).text for path in READS}
    from_replica = reads_from(replicated, "replica-1")

    with replay_paused(cluster):
        event_id = post_session(replicated, 25)  # written to the primary, not yet applied on the replica
        for path in READS:
            assert replicated.get(path).text == before[path], f"{path}: the replica's answer, without the write"
            assert replicated.get(path, headers=PRIMARY).text != before[path], f"{path}: the primary's, with it"
        from_primary = reads_from(replicated, "primary")
        assert replicated.get(f"/api/events/{event_id}/").status_code == 200, "not on the replica: the primary's"
        assert reads_from(replicated, "primary") == from_primary + 1
        assert replicated.get(f"/api/events/{uuid.uuid4()}/").status_code == 404
    assert reads_from(replicated, "replica-1") == from_replica + len(READS) + 2

    wait_replayed(cluster)
    assert replicated.get("/api/stats/").json()["total_sessions"] == 2
    assert replicated.get(f"/api/events/{event_id}/").status_code == 200


def random_sessions(count: int, seed: int) -> list[Session]:
    rng = random.Random(seed)
    start = NOW - timedelta(days=28)
    return [
        Session(
            start + timedelta(seconds=rng.randrange(28 * 86400)),
            rng.choice(["cka", "ckad", "terraform"]),
            rng.randint(1, 180),
            rng.choice([None, "ana", "bo"]),
        )
        for _ in range(count)
    ]


ANSWERS = [
    f"/api/events/?duration=1%20hour&tz=Asia/Kathmandu&{RANGE}",
    f"/api/events/?duration=1%20day&tz=Europe/Berlin&fill=true&{RANGE}",
    f"/api/events/?duration=1%20week&tags=cka&tags=ckad&user_id=ana&{RANGE}",
    f"/api/events/?duration=1%20month&tz=America/New_York&format=csv&{RANGE}",
    "/api/sessions/?limit=50",
    "/api/sessions/?tags=terraform&user_id=bo&limit=1000",
    "/api/stats/",
    "/api/stats/?user_id=ana",
    "/api/badge.svg?duration=1%20month&tags=cka",
    "/sessions?tag=CKAD",
]


def test_the_replica_answers_exactly_as_the_primary_does(replicated: TestClient, cluster: Cluster) -> None:
    insert_sessions(Database(replicated), random_sessions(600, seed=17))
    wait_replayed(cluster)
    from_replica = reads_from(replicated, "replica-1")
    for path in ANSWERS:
        on_replica, on_primary = replicated.get(path), replicated.get(path, headers=PRIMARY)
        assert on_replica.status_code == on_primary.status_code == 200, on_replica.text
        assert on_replica.content == on_primary.content, path
        assert len(on_replica.content) > 100, f"{path} should answer with data: {on_replica.text}"
    assert reads_from(replicated, "replica-1") == from_replica + len(ANSWERS)


def test_a_replica_further_behind_than_the_bound_is_skipped_until_it_catches_up(
    replicated: TestClient, cluster: Cluster
) -> None:
    with lag_bound(replicated, 1.0):
        assert wait_for_state(replicated, "ok")["lag_seconds"] < 1.0
        with replay_paused(cluster):
            event_id = post_session(replicated, 30)
            lagging = wait_for_state(replicated, "lagging")
            assert lagging["lag_seconds"] > 1.0
            assert replicated.get(f"/api/events/{event_id}/").status_code == 200, "read from the primary"
            metrics = replicated.get("/metrics").text
            assert 'studytrack_db_replica_up{replica="replica-1"} 0.0' in metrics
            assert "studytrack_db_primary_up 1.0" in metrics
        assert wait_for_state(replicated, "ok")["lag_seconds"] < 1.0
        from_replica = reads_from(replicated, "replica-1")
        assert replicated.get(f"/api/events/{event_id}/").status_code == 200
        assert reads_from(replicated, "replica-1") == from_replica + 1
        assert 'studytrack_db_replica_up{replica="replica-1"} 1.0' in replicated.get("/metrics").text


def test_a_hung_replica_delays_a_read_by_at_most_a_second_then_reads_go_to_the_primary(
    replicated: TestClient, cluster: Cluster
) -> None:
    post_session(replicated, 15)
    wait_replayed(cluster)
    assert replica_health(replicated)["state"] == "ok"
    answers = []
    with hung(cluster.standby):
        deadline = time.monotonic() + 3.5  # past the monitor's check timeout (2 s)
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = replicated.get("/api/stats/")
            answers.append((response.status_code, time.monotonic() - started, response.json()["total_sessions"]))
        assert replica_health(replicated)["state"] == "unreachable"
    assert {(status, sessions) for status, _, sessions in answers} == {(200, 1)}
    assert max(seconds for _, seconds, _ in answers) < 1.5, answers
    wait_for_state(replicated, "ok")


UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens


def test_started_while_the_primary_is_down_the_service_reads_from_the_replica_and_refuses_writes_fast(
    replicated: TestClient, cluster: Cluster, replicated_database: str, backend_settings: Settings
) -> None:
    """Mode detection and token checks too come from the replica: nothing is cached from an earlier primary."""
    post_session(replicated, 35)
    token = Database(replicated).create_token("primary-down", ["ingest", "read"])
    wait_replayed(cluster)
    configured = replica_settings(backend_settings, cluster, replicated_database, max_lag=5.0)
    fast = dataclasses.replace(configured, db_timeout_seconds=1.0)
    with TestClient(create_app(fast, database_url=UNREACHABLE)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        health = client.get("/healthz")
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["database"]) == ("degraded", "unreachable")
        assert client.get("/api/stats/").json()["total_sessions"] == 1
        assert client.get(f"/api/events/?duration=1%20day&{RANGE}").status_code == 200
        started = time.monotonic()
        refused = client.post("/api/events/", json={"tag": "cka", "minutes": 5})
        assert refused.status_code == 503
        assert refused.json()["code"] == "database_unavailable"
        assert time.monotonic() - started < 4.0


def test_a_replica_url_that_names_a_primary_is_never_read(
    cluster: Cluster, replicated_database: str, backend_settings: Settings
) -> None:
    """A promoted standby, or DATABASE_REPLICA_URL set to the primary by mistake: `not_a_standby`."""
    app = replicated_app(backend_settings, cluster, replicated_database, max_lag=5.0)
    app.app.state.replicas.replicas[0].url = cluster.primary_url(replicated_database)  # type: ignore[attr-defined]
    with app as client:
        client.headers["Authorization"] = f"Bearer {Database(client).create_token('not-standby', ['read'])}"
        assert replica_health(client) == {"name": "replica-1", "state": "not_a_standby", "lag_seconds": None}
        from_primary = reads_from(client, "primary")
        assert client.get("/api/stats/").status_code == 200
        assert reads_from(client, "primary") == from_primary + 1
        Database(client).execute("DELETE FROM api_tokens WHERE name = 'not-standby'")


def test_x_read_from_accepts_only_primary(replicated: TestClient) -> None:
    response = replicated.get("/api/stats/", headers={"X-Read-From": "replica"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert set(body) == {"status", "code", "message", "details"}


@pytest.mark.parametrize("path", ["/api/stats/", "/healthz"])
def test_without_replicas_everything_reads_from_the_primary(app_client: TestClient, path: str) -> None:
    from_primary = reads_from(app_client, "primary")
    response = app_client.get(path)
    assert response.status_code == 200
    if path == "/healthz":
        assert response.json()["replicas"] == []
    else:
        assert reads_from(app_client, "primary") == from_primary + 1


def export(cluster: Cluster, database: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`studytrack export`, as an operator runs it, with the standby as its replica."""
    env = clean_environ(
        DATABASE_URL=cluster.primary_url(database),
        DATABASE_REPLICA_URL=cluster.standby_url(database),
        LOG_LEVEL="warning",
        **settings,
    )
    command = [sys.executable, "-m", "studytrack", "export"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_export_reads_a_replica_that_holds_every_session_committed_before_it_started(
    replicated: TestClient, cluster: Cluster, replicated_database: str
) -> None:
    post_session(replicated, 20)
    caught_up = export(cluster, replicated_database)
    assert caught_up.returncode == 0, caught_up.stderr
    assert "reading replica-1" in caught_up.stderr
    assert len(caught_up.stdout.splitlines()) == 1 + 1

    with replay_paused(cluster):
        post_session(replicated, 25)
        behind = export(cluster, replicated_database, REPLICA_MAX_LAG_SECONDS="0.5")
    assert behind.returncode == 0, behind.stderr
    assert "no replica has caught up; reading the primary" in behind.stderr
    assert len(behind.stdout.splitlines()) == 1 + 2


def test_a_browser_on_another_origin_may_send_x_read_from(settings: Settings) -> None:
    cors = dataclasses.replace(settings, cors_origins=("https://a.example",))
    client = TestClient(create_app(cors, database_url=UNREACHABLE))  # a preflight needs no database
    preflight = client.options(
        "/api/stats/",
        headers={
            "Origin": "https://a.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-read-from",
        },
    )
    assert preflight.status_code == 200
    assert "x-read-from" in preflight.headers["access-control-allow-headers"].lower()

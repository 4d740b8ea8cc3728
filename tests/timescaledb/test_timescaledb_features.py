"""TimescaleDB mode on real TimescaleDB: hypertable, policies, continuous aggregate, compression, retention.

Each test gets its own in-memory TimescaleDB server (the test backend serves one session at a time), so
settings can differ per test and direct SQL never waits for the app's connection.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from studytrack.database.mode import DatabaseMode
from studytrack.events.params import BucketQuery
from studytrack.events.service import bucket_series
from tests.conftest import Database, timescaledb_server
from tests.helpers import Session, expected_buckets, insert_sessions, parse_items

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ts_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, timescaledb="required", db_pool_size=1, auth_disabled=True)


@pytest.fixture
def ts_url() -> Iterator[str]:
    with timescaledb_server() as url:
        yield url


def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params, prepare=False)
        return cur.fetchall() if cur.description else []


def policy(url: str, proc: str) -> dict[str, Any] | None:
    rows = sql(url, "SELECT config FROM timescaledb_information.jobs WHERE proc_name = %s", (proc,))
    return dict(rows[0][0]) if rows else None


def app_client(url: str, settings: Settings) -> TestClient:
    from studytrack.web.app import create_app

    return TestClient(create_app(settings, database_url=url))


def test_events_is_a_hypertable_whose_chunk_interval_follows_the_setting(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, dataclasses.replace(ts_settings, chunk_time_interval=timedelta(days=1)))
    query = "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'events'"
    assert sql(ts_url, query) == [(timedelta(days=1),)]
    run_migrations(ts_url, dataclasses.replace(ts_settings, chunk_time_interval=timedelta(days=3)))
    assert sql(ts_url, query) == [(timedelta(days=3),)]
    assert sql(ts_url, "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates") == [
        ("events_15m", False)
    ]


def test_compression_retention_and_refresh_policies_follow_the_settings(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    assert sql(
        ts_url,
        "SELECT segmentby_column_index IS NOT NULL FROM timescaledb_information.compression_settings"
        " WHERE attname = 'tag'",
    ) == [(True,)]
    assert policy(ts_url, "policy_compression")["compress_after"] == "30 days"  # type: ignore[index]
    assert policy(ts_url, "policy_retention") is None
    assert policy(ts_url, "policy_refresh_continuous_aggregate")["start_offset"] is None  # type: ignore[index]

    run_migrations(ts_url, dataclasses.replace(ts_settings, retention=timedelta(days=365), compress_after=None))
    assert policy(ts_url, "policy_compression") is None
    assert policy(ts_url, "policy_retention")["drop_after"] == "365 days"  # type: ignore[index]
    # Refreshes never reach back past the retention, so dropped raw data keeps its aggregates.
    assert policy(ts_url, "policy_refresh_continuous_aggregate")["start_offset"] == "365 days"  # type: ignore[index]


def random_sessions(count: int, start: datetime, days: int, seed: int) -> list[Session]:
    rng = random.Random(seed)
    return [
        Session(
            start + timedelta(seconds=rng.randrange(days * 86400)),
            rng.choice(["cka", "ckad", "terraform"]),
            rng.randint(1, 180),
            rng.choice([None, "ana", "bo"]),
        )
        for _ in range(count)
    ]


CASES = [
    ("1 day", "Europe/Berlin", "2025-03-25T00:00:00", "2025-04-05T00:00:00"),  # spring DST
    ("1 hour", "Europe/Berlin", "2025-10-25T20:00:00", "2025-10-26T06:00:00"),  # autumn DST night
    ("15 minutes", "Asia/Kathmandu", "2025-03-30T00:07:00", "2025-03-30T09:52:00"),  # +05:45, ragged edges
    ("1 day", "Asia/Kathmandu", "2025-03-01T00:00:00", "2025-04-30T00:00:00"),
    ("1 week", "America/New_York", "2025-02-01T13:13:13", "2025-05-01T00:00:00"),
    ("1 month", "Australia/Lord_Howe", "2025-01-01T00:00:00", "2025-06-01T00:00:00"),
    ("2 hours", "UTC", "2025-03-29T00:00:00", "2025-04-02T00:00:00"),
]


def _answers(client: TestClient, duration: str, tz: str, start: str, end: str) -> tuple[list[Any], list[Any]]:
    """(via the continuous aggregate, via the raw hypertable) for the same request."""
    query = BucketQuery.model_validate({"duration": duration, "tz": tz, "start": start, "end": end})
    pool = client.app.state.pool  # type: ignore[attr-defined]

    async def both() -> tuple[list[Any], list[Any]]:
        async with pool.connection() as conn:
            mode = DatabaseMode(server_version="17", timescaledb_version="2", rollup=True)
            rollup = await bucket_series(conn, query=query, mode=mode, max_buckets=10_000)
            raw = await bucket_series(
                conn, query=query, mode=dataclasses.replace(mode, rollup=False), max_buckets=10_000
            )
        return rollup["items"], raw["items"]

    assert client.portal is not None
    rollup, raw = client.portal.call(both)
    return rollup, raw


def test_the_continuous_aggregate_answers_like_the_raw_table_before_and_after_compression(
    ts_url: str, ts_settings: Settings
) -> None:
    run_migrations(ts_url, ts_settings)
    sessions = random_sessions(3000, datetime(2025, 1, 1, tzinfo=UTC), 180, seed=7)
    with app_client(ts_url, ts_settings) as client:
        insert_sessions(Database(client), sessions)
        checked = 0
        for duration, tz, start, end in CASES:
            rollup, raw = _answers(client, duration, tz, start, end)
            assert rollup == raw, (duration, tz)
            response = client.get("/api/events/", params={"duration": duration, "tz": tz, "start": start, "end": end})
            body = response.json()
            count, unit = duration.split()
            expected = expected_buckets(
                sessions,
                count=int(count),
                unit=unit.rstrip("s"),
                tz=tz,
                start=datetime.fromisoformat(body["start"]),
                end=datetime.fromisoformat(body["end"]),
            )
            assert parse_items(body["items"]) == expected
            checked += len(expected)
        assert checked > 200

        Database(client).execute("SELECT compress_chunk(c) FROM show_chunks('events') AS c")
        health = client.get("/healthz").json()["timescale"]
        assert health["compressed_chunks"] == health["chunks"] > 0
        assert health["compression_ratio"] > 0
        for duration, tz, start, end in CASES:
            rollup, raw = _answers(client, duration, tz, start, end)
            assert rollup == raw, (duration, tz)


def test_resending_events_into_compressed_chunks_stores_nothing_twice(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    items = [
        {
            "id": str(uuid.uuid4()),
            "tag": "cka",
            "minutes": 5 + i,
            "time": f"2025-01-{1 + i % 28:02d}T10:00:00Z",
        }
        for i in range(100)
    ]
    with app_client(ts_url, ts_settings) as client:
        assert client.post("/api/events/batch", json=items).json()["inserted"] == 100
        Database(client).execute("SELECT compress_chunk(c) FROM show_chunks('events') AS c")
        again = client.post(
            "/api/events/batch", json=[*items, {"tag": "cka", "minutes": 1, "time": "2025-01-02T11:00:00Z"}]
        )
        assert (again.json()["inserted"], again.json()["duplicates"]) == (1, 100)
        assert client.get("/api/stats/").json()["total_sessions"] == 101


def test_a_late_session_shows_in_the_next_chart_even_below_the_aggregate_watermark(
    ts_url: str, ts_settings: Settings
) -> None:
    run_migrations(ts_url, ts_settings)
    params = {"duration": "1 day", "start": "2025-01-01", "end": "2025-02-01"}
    with app_client(ts_url, ts_settings) as client:
        client.post("/api/events/", json={"tag": "cka", "minutes": 30, "time": "2025-01-20T10:00:00Z"})
        Database(client).execute("CALL refresh_continuous_aggregate('events_15m', NULL, now() - interval '1 hour')")
        # An app that was offline for months syncs a session from before the watermark.
        client.post("/api/events/", json={"tag": "cka", "minutes": 45, "time": "2025-01-05T10:00:00Z"})
        items = client.get("/api/events/", params=params).json()["items"]
        assert [(item["bucket"][:10], item["minutes"]) for item in items] == [
            ("2025-01-05", 45),
            ("2025-01-20", 30),
        ]
        assert client.get("/healthz").json()["timescale"]["rollup_materialized_until"] is not None


def test_retention_drops_old_raw_sessions_but_charts_keep_their_totals(ts_url: str, ts_settings: Settings) -> None:
    retention = dataclasses.replace(ts_settings, retention=timedelta(days=30), chunk_time_interval=timedelta(days=1))
    run_migrations(ts_url, retention)
    older, recent = NOW - timedelta(days=20), NOW - timedelta(days=2)
    with app_client(ts_url, retention) as client:
        db = Database(client)
        insert_sessions(db, [Session(older, "cka", 40), Session(recent, "cka", 20)])
        # Time passes: the 20-day-old session falls out of a (now) 10-day retention.
        db.execute("SELECT remove_retention_policy('events')")
        db.execute("SELECT add_retention_policy('events', drop_after => interval '10 days')")
        job = db.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'")[0][0]
        db.execute(f"CALL run_job({int(job)})")
        assert client.get("/api/stats/").json()["total_time"] == 20  # its raw row is gone
        items = client.get("/api/events/").json()["items"]  # the last 30 days, daily
        assert sorted(item["minutes"] for item in items) == [20, 40]  # the aggregate kept its day


def test_with_retention_a_session_older_than_it_is_refused(ts_url: str, ts_settings: Settings) -> None:
    retention = dataclasses.replace(ts_settings, retention=timedelta(days=30))
    run_migrations(ts_url, retention)
    too_old = (NOW - timedelta(days=31)).isoformat()
    with app_client(ts_url, retention) as client:
        single = client.post("/api/events/", json={"tag": "cka", "minutes": 5, "time": too_old})
        batch = client.post(
            "/api/events/batch",
            json=[{"tag": "cka", "minutes": 5}, {"tag": "cka", "minutes": 5, "time": too_old}],
        )
        assert (single.status_code, batch.status_code) == (422, 422)
        assert "retention" in single.json()["message"]
        assert [d["field"] for d in batch.json()["details"]] == ["[1].time"]
        assert client.get("/api/stats/").json()["total_sessions"] == 0


def test_db_status_reports_mode_chunks_compression_and_freshness(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    sql(
        ts_url,
        "INSERT INTO events (id, time, tag, minutes) VALUES (gen_random_uuid(), '2025-01-06 10:00Z', 'cka', 5)",
    )
    sql(ts_url, "SELECT compress_chunk(c) FROM show_chunks('events') AS c")
    result = subprocess.run(
        [sys.executable, "-m", "studytrack", "db", "status"],
        env=os.environ | {"DATABASE_URL": ts_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert lines["mode"].strip() == "timescaledb"
    assert lines["timescaledb"].strip().startswith("2.")
    assert (lines["chunks"].strip(), lines["compressed_chunks"].strip(), lines["events"].strip()) == (
        "1",
        "1",
        "1",
    )
    assert float(lines["compression_ratio"]) > 0
    assert lines["continuous_aggregate"].strip() == "events_15m"


def test_late_writes_refresh_only_the_windows_that_hold_them() -> None:
    from studytrack.events.rollup import refresh_windows

    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    times = [
        datetime(2025, 1, 1, 10, 5, tzinfo=UTC),
        datetime(2025, 1, 1, 10, 20, tzinfo=UTC),  # next grain: merged
        datetime(2025, 1, 1, 14, 0, tzinfo=UTC),  # 3.5 h later: merged
        datetime(2025, 5, 1, 9, 59, tzinfo=UTC),  # months later: its own window
        datetime(2025, 6, 1, 11, 50, tzinfo=UTC),  # newer than now - 15 min: real-time covers it
    ]
    assert refresh_windows(times, now=now, retention=None) == [
        (datetime(2025, 1, 1, 10, 0, tzinfo=UTC), datetime(2025, 1, 1, 14, 15, tzinfo=UTC)),
        (datetime(2025, 5, 1, 9, 45, tzinfo=UTC), datetime(2025, 5, 1, 10, 0, tzinfo=UTC)),
    ]
    assert refresh_windows(times, now=now, retention=timedelta(days=40)) == [
        (datetime(2025, 5, 1, 9, 45, tzinfo=UTC), datetime(2025, 5, 1, 10, 0, tzinfo=UTC)),
    ]

"""TimescaleDB mode on real TimescaleDB: hypertable, policies, the rollup, compression, retention.

Each test gets its own database on the native TimescaleDB test server, so settings can differ per test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import psycopg.sql
import pytest
from alembic import command
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.database.migrate import alembic_config, run_migrations
from studytrack.database.mode import DatabaseMode
from studytrack.events.ingest import NewEvent
from studytrack.events.params import BucketQuery
from studytrack.events.service import ChartLimits, bucket_series
from tests.databases import Database, create_database
from tests.helpers import Session, expected_buckets, insert_sessions, parse_items

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def ts_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, timescaledb="required", auth_disabled=True)


@pytest.fixture
def ts_url(timescaledb_server_url: str) -> str:
    return create_database(timescaledb_server_url, "timescaledb_features")


def sql(url: str, query: str | psycopg.sql.Composed, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params, prepare=False)
        return cur.fetchall() if cur.description else []


def policy(url: str, proc: str) -> dict[str, Any] | None:
    rows = sql(url, "SELECT config FROM timescaledb_information.jobs WHERE proc_name = %s", (proc,))
    return dict(rows[0][0]) if rows else None


def compress_all(url: str) -> None:
    """Compress every chunk now; the columnstore policy may be compressing the same chunks meanwhile."""
    for (chunk,) in sql(url, "SELECT c::text FROM show_chunks('events') AS c"):
        with contextlib.suppress(psycopg.errors.DuplicateObject):  # the policy got there first
            sql(url, "SELECT compress_chunk(%s::regclass, if_not_compressed => true)", (chunk,))


def app_client(url: str, settings: Settings) -> TestClient:
    from studytrack.web.app import create_app

    return TestClient(create_app(settings, database_url=url))


def compressed_sessions(url: str, settings: Settings, count: int, days: int, seed: int) -> None:
    """A migrated database holding `count` random sessions of 2025's first `days` days, every chunk compressed."""
    run_migrations(url, settings)
    with app_client(url, settings) as client:
        insert_sessions(Database(client), random_sessions(count, datetime(2025, 1, 1, tzinfo=UTC), days, seed))
    compress_all(url)


def test_events_is_a_hypertable_whose_chunk_interval_follows_the_setting(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, dataclasses.replace(ts_settings, chunk_time_interval=timedelta(days=1)))
    query = "SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'events'"
    assert sql(ts_url, query) == [(timedelta(days=1),)]
    run_migrations(ts_url, dataclasses.replace(ts_settings, chunk_time_interval=timedelta(days=3)))
    assert sql(ts_url, query) == [(timedelta(days=3),)]
    # The rollup is an ordinary table, exact as each insert commits (docs/timescaledb.md says why).
    assert sql(ts_url, "SELECT relkind FROM pg_class WHERE relname = 'events_15m'") == [("r",)]
    assert sql(ts_url, "SELECT count(*) FROM timescaledb_information.continuous_aggregates") == [(0,)]


def test_compression_and_retention_policies_follow_the_settings(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    assert sql(
        ts_url,
        "SELECT segmentby_column_index IS NOT NULL FROM timescaledb_information.compression_settings"
        " WHERE attname = 'user_id'",
    ) == [(True,)]
    assert policy(ts_url, "policy_compression")["compress_after"] == "30 days"  # type: ignore[index]
    assert policy(ts_url, "policy_retention") is None

    run_migrations(ts_url, dataclasses.replace(ts_settings, retention=timedelta(days=365), compress_after=None))
    assert policy(ts_url, "policy_compression") is None
    assert policy(ts_url, "policy_retention")["drop_after"] == "365 days"  # type: ignore[index]


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
    """(via the rollup, via the raw hypertable) for the same request."""
    query = BucketQuery.model_validate({"duration": duration, "tz": tz, "start": start, "end": end})
    pool = client.app.state.pool  # type: ignore[attr-defined]

    async def both() -> tuple[list[Any], list[Any]]:
        async with pool.connection() as conn:
            mode = DatabaseMode(server_version="17", timescaledb_version="2", rollup=True)
            limits = ChartLimits(buckets=10_000, rows=50_000, tags=200)
            rollup = await bucket_series(conn, query=query, mode=mode, limits=limits)
            raw = await bucket_series(conn, query=query, mode=dataclasses.replace(mode, rollup=False), limits=limits)
        return rollup["items"], raw["items"]

    assert client.portal is not None
    rollup, raw = client.portal.call(both)
    return rollup, raw


def test_the_rollup_answers_like_the_raw_hypertable_before_and_after_compression(
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

        compress_all(ts_url)
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
        compress_all(ts_url)
        again = client.post(
            "/api/events/batch", json=[*items, {"tag": "cka", "minutes": 1, "time": "2025-01-02T11:00:00Z"}]
        )
        assert (again.json()["inserted"], again.json()["duplicates"]) == (1, 100)
        assert client.get("/api/stats/").json()["total_sessions"] == 101


def test_a_session_synced_months_late_shows_in_the_next_chart(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    params = {"duration": "1 day", "start": "2025-01-01", "end": "2025-02-01"}
    with app_client(ts_url, ts_settings) as client:
        client.post("/api/events/", json={"tag": "cka", "minutes": 30, "time": "2025-01-20T10:00:00Z"})
        compress_all(ts_url)
        # An app that was offline for months syncs a session into a compressed chunk.
        client.post("/api/events/", json={"tag": "cka", "minutes": 45, "time": "2025-01-05T10:00:00Z"})
        items = client.get("/api/events/", params=params).json()["items"]
        assert [(item["bucket"][:10], item["minutes"]) for item in items] == [
            ("2025-01-05", 45),
            ("2025-01-20", 30),
        ]


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


def test_db_status_reports_mode_chunks_and_compression(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    sql(
        ts_url,
        "INSERT INTO events (id, time, tag, minutes) VALUES (gen_random_uuid(), '2025-01-06 10:00Z', 'cka', 5)",
    )
    compress_all(ts_url)
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
    assert lines["rollup"].strip() == "events_15m, events_1h, events_6h, events_1d"


def job_ids(url: str) -> dict[str, int]:
    rows = sql(url, "SELECT proc_name, job_id FROM timescaledb_information.jobs WHERE job_id >= 1000")
    return {str(proc): int(job) for proc, job in rows}


def run_soon(url: str, job: int) -> None:
    """Ask the scheduler (not `run_job`) to run a policy now and every second after."""
    sql(url, "SELECT alter_job(%s, schedule_interval => interval '1 second', next_start => now())", (job,))


def successes(url: str, job: int) -> int:
    rows = sql(url, "SELECT total_successes FROM timescaledb_information.job_stats WHERE job_id = %s", (job,))
    return int(rows[0][0]) if rows else 0


def wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.5)


def test_the_scheduler_runs_the_columnstore_policy_by_itself(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, dataclasses.replace(ts_settings, chunk_time_interval=timedelta(days=1)))
    with app_client(ts_url, ts_settings) as client:
        insert_sessions(Database(client), [Session(NOW - timedelta(days=60, hours=n), "cka", 10) for n in range(48)])
    columnstore = job_ids(ts_url)["policy_compression"]
    run_soon(ts_url, columnstore)

    wait_for(lambda: successes(ts_url, columnstore) > 0, "the columnstore policy to run")
    compressed = (
        "SELECT bool_and(is_compressed), count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'events'"
    )
    assert sql(ts_url, compressed) in ([(True, 2)], [(True, 3)])  # 48 hours: two or three daily chunks
    failures = "SELECT coalesce(sum(total_failures), 0) FROM timescaledb_information.job_stats"
    assert sql(ts_url, failures) == [(0,)]


def test_charts_stay_exact_after_late_writes_into_compressed_chunks(ts_url: str, ts_settings: Settings) -> None:
    run_migrations(ts_url, ts_settings)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    early = random_sessions(2000, start, 120, seed=11)
    late = random_sessions(500, start, 120, seed=12)  # an app syncing months later, into compressed chunks
    params = {"duration": "1 day", "tz": "Europe/Berlin", "start": "2025-01-01", "end": "2025-05-01"}
    with app_client(ts_url, ts_settings) as client:
        db = Database(client)
        insert_sessions(db, early)
        compress_all(ts_url)
        insert_sessions(db, late)
        uncompressed = (
            "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'events' AND NOT is_compressed"
        )
        assert db.execute(uncompressed) == [(0,)]
        body = client.get("/api/events/", params=params).json()
        expected = expected_buckets(
            early + late,
            count=1,
            unit="day",
            tz="Europe/Berlin",
            start=datetime.fromisoformat(body["start"]),
            end=datetime.fromisoformat(body["end"]),
        )
        assert parse_items(body["items"]) == expected


def test_retention_run_by_the_scheduler_never_empties_a_chart_or_the_totals(ts_url: str, ts_settings: Settings) -> None:
    kept = dataclasses.replace(ts_settings, retention=timedelta(days=30), chunk_time_interval=timedelta(days=1))
    run_migrations(ts_url, kept)
    with app_client(ts_url, kept) as client:
        insert_sessions(Database(client), [Session(NOW - timedelta(days=20), "cka", 40), Session(NOW, "cka", 20)])
    # The operator shortens the retention: the 20-day-old session's chunk is now past it.
    shorter = dataclasses.replace(kept, retention=timedelta(days=10))
    run_migrations(ts_url, shorter)
    jobs = job_ids(ts_url)
    run_soon(ts_url, jobs["policy_retention"])
    wait_for(lambda: sql(ts_url, "SELECT count(*) FROM events") == [(1,)], "the retention policy to drop the chunk")
    with app_client(ts_url, shorter) as client:
        assert client.get("/api/stats/").json()["total_time"] == 60  # from the rollup, like the chart
        assert [item["minutes"] for item in client.get("/api/sessions/").json()["items"]] == [20]  # raw row gone
        items = client.get("/api/events/", params={"duration": "1 day", "tags": "cka"}).json()["items"]
    assert sorted(item["minutes"] for item in items) == [20, 40]  # the rollup kept its day


def test_time_bucket_gapfill_lists_the_same_buckets_as_time_bucket_across_dst(ts_url: str) -> None:
    """Re-checked on each TimescaleDB upgrade: up to 2.23 gapfill stepped in fixed UTC increments here
    (05:00Z, 11:00Z, ...); from 2.29 it follows local time like time_bucket (05:00Z, 10:00Z, 16:00Z, ...)."""
    sql(ts_url, "CREATE EXTENSION IF NOT EXISTS timescaledb")
    day = ("2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z")
    gapfill = sql(
        ts_url,
        "SELECT time_bucket_gapfill('6 hours', t, 'America/New_York', %s, %s) AS b FROM"
        " (SELECT %s::timestamptz AS t) AS one GROUP BY b ORDER BY b",
        (*day, day[0]),
    )
    bucket = sql(
        ts_url,
        "SELECT DISTINCT time_bucket('6 hours', t, 'America/New_York') AS b FROM generate_series("
        "%s::timestamptz, %s::timestamptz - interval '1 second', interval '15 minutes') AS t ORDER BY b",
        day,
    )
    assert [row[0].astimezone(UTC).strftime("%H:%M") for row in bucket] == ["05:00", "10:00", "16:00", "22:00"]
    assert gapfill == bucket


def test_concurrent_writes_into_the_same_buckets_all_reach_the_rollup(
    ts_url: str, ts_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    run_migrations(ts_url, ts_settings)
    start = datetime(2025, 3, 1, 10, tzinfo=UTC)
    batches = [
        [NewEvent(uuid.uuid4(), start + timedelta(minutes=7 * i + j), "cka", 1, None, None, None) for i in range(60)]
        for j in range(6)
    ]  # six writers upserting the same rollup rows
    with app_client(ts_url, ts_settings) as client:
        writer = client.app.state.writer  # type: ignore[attr-defined]

        async def write_all() -> None:
            await asyncio.gather(*(writer.write(batch) for batch in batches))

        assert client.portal is not None
        with caplog.at_level("WARNING", logger="studytrack"):
            client.portal.call(write_all)
        assert Database(client).execute("SELECT sum(minutes)::int FROM events_15m") == [(360,)]
    assert [r.getMessage() for r in caplog.records if r.name.startswith("studytrack.events")] == []


def test_chunks_compressed_by_tag_stay_exact_when_new_ones_are_segmented_by_user(
    ts_url: str, ts_settings: Settings
) -> None:
    command.upgrade(alembic_config(ts_url, ts_settings), "0003")
    start = datetime(2025, 1, 6, tzinfo=UTC)
    early = [Session(s.time, s.tag, s.minutes, f"u{n % 3}") for n, s in enumerate(random_sessions(200, start, 20, 1))]
    with app_client(ts_url, ts_settings) as client:
        insert_sessions(Database(client), early)
    compress_all(ts_url)  # by tag, the layout before 0004
    run_migrations(ts_url, ts_settings)
    layout = "SELECT segmentby FROM timescaledb_information.hypertable_columnstore_settings"
    assert sql(ts_url, layout) == [("user_id",)]  # an existing database gets the layouts of later migrations too
    late = [Session(s.time, s.tag, s.minutes, f"u{n % 3}") for n, s in enumerate(random_sessions(200, start, 40, 2))]
    with app_client(ts_url, ts_settings) as client:
        insert_sessions(Database(client), late)
        compress_all(ts_url)  # the newer chunks by user
        params = {"duration": "1 day", "user_id": "u1", "start": "2025-01-06", "end": "2025-02-20"}
        items = client.get("/api/events/", params=params).json()["items"]
    mine = [s for s in early + late if s.user_id == "u1"]
    end = datetime(2025, 2, 20, tzinfo=UTC)
    assert parse_items(items) == expected_buckets(mine, count=1, unit="day", tz="UTC", start=start, end=end)


def test_healthz_reads_timescaledb_s_chunk_figures_at_most_once_per_status_period_and_worker(
    ts_url: str, ts_settings: Settings
) -> None:
    from studytrack.web.health import STATUS_SECONDS

    compressed_sessions(ts_url, ts_settings, 200, 60, seed=25)
    with app_client(ts_url, ts_settings) as client:
        before = client.get("/healthz").json()["timescale"]
        insert_sessions(Database(client), [Session(NOW - timedelta(hours=1), "cka", 30)])  # a new chunk
        assert client.get("/healthz").json()["timescale"] == before  # within the period: as read before
        cache = client.app.state.timescale_status  # type: ignore[attr-defined]
        cache.expire(time.monotonic() + STATUS_SECONDS + 1)  # the period over
        after = client.get("/healthz").json()["timescale"]
    assert after["chunks"] == before["chunks"] + 1
    assert after["compressed_chunks"] == before["compressed_chunks"] == before["chunks"]


PREPARED_CHARTS = "SELECT generic_plans FROM pg_prepared_statements WHERE statement LIKE '%%user_id = $%%'"


def test_a_person_s_prepared_chart_and_totals_stay_exact_as_chunks_are_written_late_compressed_created_and_dropped(
    ts_url: str, ts_settings: Settings
) -> None:
    one_connection = dataclasses.replace(ts_settings, db_pool_size=1)  # every chart on the connection that prepared it
    run_migrations(ts_url, dataclasses.replace(one_connection, chunk_time_interval=timedelta(days=7)))
    start = datetime(2025, 1, 6, tzinfo=UTC)
    sessions = random_sessions(600, start, 42, seed=24)
    mine: list[Session] = []
    charts = [
        {"duration": "1 day", "user_id": "ana", "start": "2025-01-06", "end": "2025-03-31"},
        {"duration": "1 week", "user_id": "ana", "tags": "cka", "start": "2025-01-06", "end": "2025-03-31"},
    ]

    def answers_exactly(client: TestClient) -> None:
        for params in charts:
            tags = [params["tags"]] if "tags" in params else None
            wanted = [s for s in mine if s.user_id == "ana" and (tags is None or s.tag in tags)]
            unit = params["duration"].split()[1]
            end = datetime(2025, 3, 31, tzinfo=UTC)
            expected = expected_buckets(wanted, count=1, unit=unit, tz="UTC", start=start, end=end)
            assert parse_items(client.get("/api/events/", params=params).json()["items"]) == expected
        totals = client.get("/api/stats/", params={"user_id": "ana"}).json()  # a person's totals: prepared too
        assert totals["total_time"] == sum(s.minutes for s in mine if s.user_id == "ana")

    with app_client(ts_url, one_connection) as client:
        db = Database(client)

        def add(new: list[Session]) -> None:
            insert_sessions(db, new)
            mine.extend(new)

        # PostgreSQL picks a prepared statement's generic plan by cost (it does at 10M events); here, always.
        db.execute("SET plan_cache_mode = force_generic_plan")
        add(sessions)
        for _ in range(2):
            answers_exactly(client)
        assert all(generic > 0 for (generic,) in db.execute(PREPARED_CHARTS))  # the plans these checks are about

        compress_all(ts_url)
        answers_exactly(client)
        add([Session(start + timedelta(days=3, hours=n), "cka", 10 + n, "ana") for n in range(5)])  # late
        answers_exactly(client)
        add([Session(start + timedelta(days=60, hours=n), "cka", 20 + n, "ana") for n in range(5)])  # new chunks
        answers_exactly(client)
        first = sql(ts_url, "SELECT c::text FROM show_chunks('events') AS c ORDER BY 1 LIMIT 1")[0][0]
        sql(ts_url, "SELECT decompress_chunk(%s::regclass)", (first,))
        answers_exactly(client)
        chunks_end = "SELECT range_end FROM timescaledb_information.chunks WHERE hypertable_name = 'events'"
        second_end = sorted(end for (end,) in sql(ts_url, chunks_end))[1]
        sql(ts_url, "SELECT drop_chunks('events', older_than => %s::timestamptz)", (second_end,))  # the first two
        mine[:] = [s for s in mine if s.time >= second_end]
        answers_exactly(client)
        assert all(generic > 0 for (generic,) in db.execute(PREPARED_CHARTS))


TIME_INDEXES = "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%\\_time\\_range'"
COMPRESSED = "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'events' AND is_compressed"


def test_compressed_chunks_get_a_time_index_so_a_chart_s_ragged_start_reads_few_batches(
    ts_url: str, ts_settings: Settings
) -> None:
    run_migrations(ts_url, ts_settings)
    assert "studytrack_index_columnstore" in job_ids(ts_url)  # the job, every 15 minutes
    start = datetime(2025, 1, 1, tzinfo=UTC)
    sessions = random_sessions(2000, start, 120, seed=21)
    with app_client(ts_url, ts_settings) as client:
        insert_sessions(Database(client), sessions)
        compress_all(ts_url)
        sql(ts_url, "CALL studytrack_index_columnstore()")  # what the job does
        assert sql(ts_url, TIME_INDEXES) == sql(ts_url, COMPRESSED) != [(0,)]

        edge = "SELECT count(*) FROM events WHERE time >= '2025-02-10 08:07:31+00' AND time < '2025-02-10 08:15:00+00'"
        with psycopg.connect(ts_url, autocommit=True) as conn:
            conn.execute("SET enable_seqscan = off")  # a few batches here: show the index can serve the edge
            plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + edge).fetchall())
        assert "_time_range" in plan, plan

        unaligned = {"duration": "1 day", "start": "2025-01-03T10:07:31Z", "end": "2025-04-20T17:52:09Z"}
        body = client.get("/api/events/", params=unaligned).json()
        end = datetime(2025, 4, 20, 17, 52, 9, tzinfo=UTC)
        expected = expected_buckets(
            sessions, count=1, unit="day", tz="UTC", start=datetime(2025, 1, 3, 10, 7, 31, tzinfo=UTC), end=end
        )
        assert parse_items(body["items"]) == expected


def test_the_time_index_job_and_a_manual_run_at_the_same_moment_both_succeed(
    ts_url: str, ts_settings: Settings
) -> None:
    compressed_sessions(ts_url, ts_settings, 3000, 120, seed=23)
    indexes = "SELECT schemaname, indexname FROM pg_indexes WHERE indexname LIKE '%\\_time\\_range'"
    for _ in range(3):
        for schema, index in sql(ts_url, indexes):
            sql(ts_url, psycopg.sql.SQL("DROP INDEX {}").format(psycopg.sql.Identifier(schema, index)))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:  # as the scheduler's job and a person may
            runs = [pool.submit(sql, ts_url, "CALL studytrack_index_columnstore()") for _ in range(2)]
            for run in runs:
                run.result()
        assert sql(ts_url, TIME_INDEXES) == sql(ts_url, COMPRESSED) != [(0,)]


def test_the_time_index_migration_goes_down_and_up_again(ts_url: str, ts_settings: Settings) -> None:
    compressed_sessions(ts_url, ts_settings, 300, 60, seed=22)
    sql(ts_url, "CALL studytrack_index_columnstore()")
    assert sql(ts_url, TIME_INDEXES) != [(0,)]
    job = job_ids(ts_url)["studytrack_index_columnstore"]
    wait_for(lambda: successes(ts_url, job) > 0, "the index job's first run, which the scheduler starts at once")

    command.downgrade(alembic_config(ts_url, ts_settings), "0005")  # past 0007, which leaves the layout as it is
    assert sql(ts_url, TIME_INDEXES) == [(0,)]
    assert "studytrack_index_columnstore" not in job_ids(ts_url)
    run_migrations(ts_url, ts_settings)
    assert sql(ts_url, TIME_INDEXES) == sql(ts_url, COMPRESSED)  # the migration indexes what is compressed


def test_a_database_that_skipped_the_by_user_layout_gets_it_on_the_next_migration(
    ts_url: str, ts_settings: Settings
) -> None:
    run_migrations(ts_url, ts_settings)
    command.downgrade(alembic_config(ts_url, ts_settings), "0006")  # as left by a migration run before 0007
    sql(ts_url, "ALTER TABLE events SET (timescaledb.segmentby = 'tag', timescaledb.orderby = 'user_id, time DESC')")
    run_migrations(ts_url, ts_settings)
    layout = "SELECT segmentby, orderby FROM timescaledb_information.hypertable_columnstore_settings"
    assert sql(ts_url, layout) == [("user_id", 'tag,"time" DESC')]

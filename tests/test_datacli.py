"""`studytrack demo | import | export`, run as a user runs them: a subprocess on a fresh database."""

from __future__ import annotations

import csv
import importlib
import io
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from tqdm import tqdm

from studytrack.cli.data import import_sessions
from studytrack.events.demo import DEMO_SOURCE, LENGTHS, TAGS
from studytrack.events.export import to_csv
from studytrack.events.ingest import content_id
from studytrack.events.models import BucketSeries
from studytrack.events.tracker_csv import SessionsCsv
from tests import REPO
from tests.databases import Database, create_database
from tests.helpers import Session, expected_buckets, parse_items

SAMPLE = REPO / "tests" / "data" / "devops-study-sessions.csv"  # a copy of shared/data's tracker export
UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens
COLUMNS = ("id", "time", "tag", "minutes", "user_id", "note", "source", "received_at")
IDS = [str(uuid.UUID(int=n, version=4)) for n in range(1, 11)]


def studytrack(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("POSTGRES_")}
    environ |= {"DATABASE_URL": url, "LOG_LEVEL": "warning", "RETENTION_DAYS": "0"} | env
    return subprocess.run(
        [sys.executable, "-m", "studytrack", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        return conn.execute(sql, params).fetchall()


def stored(url: str) -> list[tuple[Any, ...]]:
    """Every event as an export shows it: its tag in the stored spelling."""
    columns = ", ".join("coalesce(s.spelling, e.tag)" if name == "tag" else f"e.{name}" for name in COLUMNS)
    return query(url, f"SELECT {columns} FROM events AS e NATURAL LEFT JOIN tag_spellings AS s ORDER BY time, id")


@pytest.fixture
def fresh_url(server_url: str) -> str:
    return create_database(server_url, "datacli")


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE.open(newline="") as file:
        return list(csv.DictReader(file))


def test_demo_stores_a_realistic_study_rhythm_with_a_progress_bar(fresh_url: str) -> None:
    result = studytrack(fresh_url, "demo", "--days", "56", "--seed", "7", "--user-id", "ana")
    assert result.returncode == 0, result.stderr
    assert "demo: 100%" in result.stderr
    today = datetime.now(UTC).date()
    match = re.fullmatch(
        rf"demo \(seed 7\): (\d+) sessions over the 56 days before {today}: (\d+) added, 0 already present\n",
        result.stdout,
    )
    assert match is not None, result.stdout
    assert match[1] == match[2]

    # The sessions depend on the date: these hold for seed 7 on every day (checked over four years of dates).
    rows = query(fresh_url, "SELECT time, tag, minutes, user_id, source FROM events")
    assert len(rows) == int(match[1])
    assert {(user, source) for _, _, _, user, source in rows} == {("ana", DEMO_SOURCE)}
    assert {tag for _, tag, _, _, _ in rows} <= {tag.lower() for tag in TAGS}  # keys; people see TAGS
    assert len({tag for _, tag, _, _, _ in rows}) >= 5
    lengths = Counter(minutes for _, _, minutes, _, _ in rows)
    assert set(lengths) <= set(LENGTHS)
    assert lengths[25] + lengths[50] > len(rows) / 2  # mostly pomodoros
    assert max(lengths) >= 90  # and some long sessions
    per_day = Counter(time.date() for time, *_ in rows)
    assert today - timedelta(days=56) <= min(per_day) <= max(per_day) < today  # whole past days: none in the future
    assert max(per_day.values()) >= 3
    days = [today - timedelta(days=back) for back in range(1, 57)]
    weekday = [per_day[day] for day in days if day.weekday() < 5]
    weekend = [per_day[day] for day in days if day.weekday() >= 5]
    assert sum(weekday) / len(weekday) > 1.3 * sum(weekend) / len(weekend)


def test_demo_with_the_same_seed_stores_the_same_sessions_and_adds_nothing_when_repeated(server_url: str) -> None:
    first, second = create_database(server_url, "demo_a"), create_database(server_url, "demo_b")
    assert studytrack(first, "demo", "--days", "30", "--seed", "42").returncode == 0
    again = studytrack(first, "demo", "--days", "30", "--seed", "42")
    count = len(stored(first))
    assert again.returncode == 0
    assert again.stdout.endswith(f": 0 added, {count} already present\n")
    assert len(stored(first)) == count

    assert studytrack(second, "demo", "--days", "30", "--seed", "42").returncode == 0
    ids = "SELECT id, time, tag, minutes FROM events ORDER BY id"
    assert query(first, ids) == query(second, ids)
    assert studytrack(second, "demo", "--days", "30", "--seed", "43").returncode == 0
    assert len(stored(second)) > count  # another seed, other sessions


def test_the_tracker_sample_imports_every_row_and_a_second_import_adds_nothing(fresh_url: str) -> None:
    result = studytrack(fresh_url, "import", str(SAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{SAMPLE}: 251 rows read (with header)\n  imported:        251\n  already present: 0\n  skipped:         0\n"
    )
    assert "import: 100%" in result.stderr

    rows = sample_rows()
    expected = {
        (uuid.UUID(row["id"]), datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC), row["tag"].strip())
        for row in rows
    }
    assert {(event_id, time, tag) for event_id, time, tag, *_ in stored(fresh_url)} == expected
    minutes_by_tag: Counter[str] = Counter()
    for row in rows:
        minutes_by_tag[row["tag"].lower()] += int(row["minutes"])
    assert dict(query(fresh_url, "SELECT tag, sum(minutes) FROM events GROUP BY tag")) == minutes_by_tag
    assert query(fresh_url, "SELECT DISTINCT source FROM events") == [("study-tracker",)]

    again = studytrack(fresh_url, "import", str(SAMPLE))
    assert again.returncode == 0
    assert "  imported:        0\n  already present: 251\n  skipped:         0\n" in again.stdout
    assert len(stored(fresh_url)) == 251


def test_naive_timestamps_are_read_in_the_zone_given(fresh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    path.write_text(
        "id,timestamp,minutes,tag\n"
        f"{IDS[0]},2025-01-06T08:54:00.000000,25,CKA\n"  # CET, UTC+1
        f"{IDS[1]},2025-07-01T08:00:00,50,CKA\n"  # CEST, UTC+2
        f"{IDS[2]},2025-07-01T08:00:00+00:00,50,CKA\n"  # an offset is kept
    )
    assert studytrack(fresh_url, "import", str(path), "--tz", "Europe/Berlin").returncode == 0
    assert query(fresh_url, "SELECT id::text, time FROM events ORDER BY id") == [
        (IDS[0], datetime(2025, 1, 6, 7, 54, tzinfo=UTC)),
        (IDS[1], datetime(2025, 7, 1, 6, 0, tzinfo=UTC)),
        (IDS[2], datetime(2025, 7, 1, 8, 0, tzinfo=UTC)),
    ]


MESSY = [
    f"{IDS[0]},2025-01-06T08:54:00.000000,25,CKA",  # 1: no header, a session
    "",  # 2
    f"  {IDS[1]} , 2025-01-07T09:10:00 , 60 ,  GitHub Actions  ",  # 3: stray whitespace
    f"{IDS[0]},2025-01-06T08:54:00.000000,25,CKA",  # 4: the same session again
    f"{IDS[2]},2025-01-08T10:00:00,0,Docker",  # 5
    f"{IDS[3]},2025-01-08T11:00:00,abc,Docker",  # 6
    f"{IDS[4]},2025-01-08T12:00:00,25,",  # 7
    f"{IDS[5]},yesterday,25,Linux",  # 8
    ",2025-01-09T08:00:00,50,Terraform",  # 9: no id, derived from the content
    "not-a-uuid,2025-01-09T09:00:00,50,Terraform",  # 10: derived too
    f"{IDS[0]},2025-01-10T08:00:00,25,CKA",  # 11: the id of line 1 for another session
    f"{IDS[6]},2025-01-11T08:00:00,25",  # 12
    "   ",  # 13
    f"{IDS[7]},2025-01-12T08:00:00,1441,CKA",  # 14
    "id,timestamp,minutes,tag",  # 15: a second export appended
    f"{IDS[8]},2025-01-13T08:00:00,30,AWS SAA,",  # 16: a trailing comma
    f"{IDS[9]},,0,",  # 17
]
MESSY_SKIPPED = (
    "    line 5: minutes: Input should be greater than or equal to 1\n"
    "    line 6: minutes: Input should be a valid integer\n"
    "    line 7: tag: must be 1 to 64 characters after trimming spaces\n"
    "    line 8: timestamp: not an ISO 8601 date and time\n"
    "    line 11: id: already used on line 1 by a different session\n"
    "    line 12: expected 4 columns (id,timestamp,minutes,tag), found 3\n"
    "    line 14: minutes: Input should be less than or equal to 1440\n"
    "    line 15: a header row, not a session\n"
    "    line 17: timestamp: missing; minutes: Input should be greater than or equal to 1;"
    " tag: must be 1 to 64 characters after trimming spaces\n"
)


def test_a_messy_export_imports_its_valid_rows_and_names_every_skipped_line(fresh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "messy.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(MESSY).encode() + b"\r\n")  # BOM and CRLF, as Excel saves it
    result = studytrack(fresh_url, "import", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f"{path}: 15 rows read (no header, 2 blank lines ignored)\n"
        "  imported:        5\n"
        "  already present: 1\n"
        "  skipped:         9\n" + MESSY_SKIPPED
    )
    derived = [
        content_id(
            time=datetime(2025, 1, 9, h, tzinfo=UTC), tag="terraform", minutes=50, user_id=None, source="study-tracker"
        )
        for h in (8, 9)
    ]
    assert query(fresh_url, "SELECT id, time, tag, minutes FROM events ORDER BY time") == [
        (uuid.UUID(IDS[0]), datetime(2025, 1, 6, 8, 54, tzinfo=UTC), "cka", 25),
        (uuid.UUID(IDS[1]), datetime(2025, 1, 7, 9, 10, tzinfo=UTC), "github actions", 60),
        (derived[0], datetime(2025, 1, 9, 8, tzinfo=UTC), "terraform", 50),
        (derived[1], datetime(2025, 1, 9, 9, tzinfo=UTC), "terraform", 50),
        (uuid.UUID(IDS[8]), datetime(2025, 1, 13, 8, tzinfo=UTC), "aws saa", 30),
    ]

    again = studytrack(fresh_url, "import", str(path))
    assert again.stdout.endswith("  imported:        0\n  already present: 6\n  skipped:         9\n" + MESSY_SKIPPED)
    assert len(stored(fresh_url)) == 5


def test_many_skipped_rows_are_grouped_by_reason(fresh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sessions.csv"
    bad = [f"{uuid.uuid4()},2025-01-06T08:{i:02d}:00,0,cka" for i in range(30)]
    path.write_text("\n".join(["id,timestamp,minutes,tag", *bad, f"{IDS[0]},2025-01-06T09:00:00,,cka"]) + "\n")
    result = studytrack(fresh_url, "import", str(path))
    assert result.returncode == 0
    assert result.stdout.splitlines()[-3:] == [
        "  skipped:         31",
        "    minutes: Input should be greater than or equal to 1: 30 rows"
        " (lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 20 more)",
        "    minutes: Input should be a valid integer: 1 row (line 32)",
    ]


def test_rows_older_than_the_retention_period_are_skipped_with_that_reason(fresh_url: str, tmp_path: Path) -> None:
    recent = (datetime.now(UTC) - timedelta(days=2)).replace(tzinfo=None, microsecond=0).isoformat()
    path = tmp_path / "sessions.csv"
    path.write_text(f"id,timestamp,minutes,tag\n{IDS[0]},2025-01-06T08:54:00,25,CKA\n{IDS[1]},{recent},25,CKA\n")
    result = studytrack(fresh_url, "import", str(path), RETENTION_DAYS="30")
    assert result.returncode == 0
    assert result.stdout.splitlines()[1:] == [
        "  imported:        1",
        "  already present: 0",
        "  skipped:         1",
        "    line 2: timestamp: is older than the retention period (30 days, RETENTION_DAYS)",
    ]


def test_only_a_command_that_cannot_run_fails(tmp_path: Path) -> None:
    missing = studytrack(UNREACHABLE, "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1
    assert f"studytrack import: cannot read {tmp_path / 'nope.csv'}: No such file or directory" in missing.stderr

    foreign = tmp_path / "other.csv"
    foreign.write_text("name,email\nana,ana@example.org\n")
    wrong = studytrack(UNREACHABLE, "import", str(foreign))
    assert wrong.returncode == 1
    assert "line 1: expected a header naming the columns id,timestamp,minutes,tag" in wrong.stderr

    down = studytrack(UNREACHABLE, "demo", "--days", "3")
    assert down.returncode == 1
    assert "studytrack demo: cannot reach the database" in down.stderr
    assert "Traceback" not in down.stderr


def test_without_a_configured_database_the_commands_use_the_embedded_one(tmp_path: Path) -> None:
    home = {"STUDYTRACK_HOME": str(tmp_path / "home")}
    assert studytrack("", "import", str(SAMPLE), **home).returncode == 0
    exported = studytrack("", "export", "--tags", "cka", **home)
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 1 + 22
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()


def _with_a_note(url: str) -> None:
    """The sample plus a session whose note needs CSV quoting, and one of a user."""
    assert studytrack(url, "import", str(SAMPLE)).returncode == 0
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO events (id, time, tag, minutes, user_id, note, source) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (uuid.uuid4(), datetime(2025, 3, 3, 12, tzinfo=UTC), "cka", 45, "ana", 'etcd, "backup"\ndrill', None),
        )


def _parsed(row: dict[str, str]) -> tuple[Any, ...]:
    def cell(name: str) -> Any:
        value = row[name]
        if name in ("time", "received_at"):
            return datetime.fromisoformat(value)
        if name == "id":
            return uuid.UUID(value)
        if name == "minutes":
            return int(value)
        return value or None

    return tuple(cell(name) for name in COLUMNS)


def test_csv_export_holds_exactly_what_is_stored_oldest_first(fresh_url: str) -> None:
    _with_a_note(fresh_url)
    result = studytrack(fresh_url, "export")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(",".join(COLUMNS) + "\n")
    assert [_parsed(row) for row in csv.DictReader(io.StringIO(result.stdout))] == stored(fresh_url)
    assert "exported 252 sessions to standard output" in result.stderr

    chosen = studytrack(fresh_url, "export", "--tags", "CKA", "ckad", "--start", "2025-03-01", "--end", "2025-04-01")
    expected = [row for row in stored(fresh_url) if row[2] in ("CKA", "CKAD") and date(2025, 3, 1) <= row[1].date()]
    expected = [row for row in expected if row[1] < datetime(2025, 4, 1, tzinfo=UTC)]
    assert [_parsed(row) for row in csv.DictReader(io.StringIO(chosen.stdout))] == expected
    assert len(expected) > 5
    ana = studytrack(fresh_url, "export", "--user-id", "ana")
    assert [_parsed(row)[5] for row in csv.DictReader(io.StringIO(ana.stdout))] == ['etcd, "backup"\ndrill']


def test_parquet_export_is_readable_with_pyarrow(fresh_url: str, tmp_path: Path) -> None:
    parquet = importlib.import_module("pyarrow.parquet")
    _with_a_note(fresh_url)
    path = tmp_path / "sessions.parquet"
    result = studytrack(fresh_url, "export", "--format", "parquet", "--output", str(path))
    assert result.returncode == 0, result.stderr
    table = parquet.read_table(path)
    assert table.column_names == list(COLUMNS)
    rows = [tuple(row.values()) for row in table.to_pylist()]
    assert [(uuid.UUID(row[0]), *row[1:]) for row in rows] == stored(fresh_url)

    to_stdout = studytrack(fresh_url, "export", "--format", "parquet")
    assert to_stdout.returncode == 2
    assert "--format parquet needs --output FILE" in to_stdout.stderr


def test_imported_sessions_count_in_the_buckets_at_once(client: TestClient, db: Database) -> None:
    """On both backends: the import's writes keep the rollups exact."""
    writer = client.app.state.writer  # type: ignore[attr-defined]
    portal = client.portal
    assert portal is not None

    def read() -> SessionsCsv:
        lines = SAMPLE.read_text().splitlines(keepends=True)
        return SessionsCsv(lines, zone=ZoneInfo("UTC"), source="study-tracker", now=datetime.now(UTC))

    report = portal.call(import_sessions, writer, read(), tqdm(disable=True))
    assert (report.imported, report.present, report.skipped) == (251, 0, [])
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    params = {"duration": "1 week", "start": start.isoformat(), "end": end.isoformat()}
    sessions = [
        Session(datetime.fromisoformat(row["timestamp"]).replace(tzinfo=UTC), row["tag"].strip(), int(row["minutes"]))
        for row in sample_rows()
    ]
    expected = expected_buckets(sessions, count=1, unit="week", tz="UTC", start=start, end=end)
    assert parse_items(client.get("/api/events/", params=params).json()["items"]) == expected

    again = portal.call(import_sessions, writer, read(), tqdm(disable=True))
    assert (again.imported, again.present) == (0, 251)


def test_csv_export_defuses_formula_cells_as_the_api_csv_does(fresh_url: str) -> None:
    now = datetime(2025, 1, 6, 8, tzinfo=UTC)
    assert studytrack(fresh_url, "migrate").returncode == 0
    with psycopg.connect(fresh_url) as conn:
        conn.execute(
            "INSERT INTO events (id, time, tag, minutes, user_id, note, source) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (uuid.UUID(int=1), now, "=cmd|' /c calc'!a0", 25, "+alice", "@sum(a1)", "\tsource"),
        )
    result = studytrack(fresh_url, "export")
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader(io.StringIO(result.stdout)))
    assert (row["tag"], row["user_id"], row["note"], row["source"]) == (
        "'=cmd|' /c calc'!a0",
        "'+alice",
        "'@sum(a1)",
        "'\tsource",
    )
    series: BucketSeries = {"duration": "1 day", "tz": "UTC", "start": now, "end": now, "items": [
        {"bucket": now, "tag": "=cmd|' /c calc'!a0", "minutes": 25, "count": 1, "avg_minutes": 25.0}
    ]}  # fmt: skip
    assert next(csv.DictReader(io.StringIO(to_csv(series))))["tag"] == row["tag"]

"""`studytrack db rebuild-rollups`: the coarse rollups made again from the hourly one (database/rollups.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from studytrack.database.rollups import rebuild_coarse_rollups
from tests.databases import Database, rollups_off_by
from tests.helpers import Session, insert_sessions, parse_items


def chart(client: TestClient) -> list[dict[str, Any]]:
    """March 2025 by day in Tokyo: read from the six-hourly rollup."""
    params = {"duration": "1 day", "tz": "Asia/Tokyo", "start": "2025-03-01", "end": "2025-04-01"}
    response = client.get("/api/events/", params=params)
    assert response.status_code == 200, response.text
    return parse_items(response.json()["items"])


def test_rebuilding_the_coarse_rollups_restores_what_an_older_version_s_writes_left_out(
    client: TestClient, db: Database, database_url: str
) -> None:
    first = datetime(2025, 3, 1, tzinfo=UTC)
    insert_sessions(db, [Session(first + timedelta(hours=5 * n), ("cka", "go")[n % 2], 10 + n) for n in range(300)])
    expected = chart(client)
    # What writers of a version without these rollups leave: the sessions in every other rollup, not here.
    db.execute("UPDATE events_6h SET minutes = 0, count = 0 WHERE bucket < '2025-03-20'")
    db.execute("DELETE FROM events_1d WHERE bucket >= '2025-03-20'")
    assert rollups_off_by(db)["events_6h"] > 0
    assert chart(client) != expected

    assert rebuild_coarse_rollups(database_url) == {
        "events_6h": db.execute("SELECT count(*) FROM events_6h")[0][0],
        "events_1d": db.execute("SELECT count(*) FROM events_1d")[0][0],
    }
    assert set(rollups_off_by(db).values()) == {0}
    assert chart(client) == expected


def test_the_rebuild_command_names_the_rollups_it_made(database_url: str) -> None:
    env = os.environ | {"DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "studytrack", "db", "rebuild-rollups"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "rebuilt from events_1h: events_6h (" in done.stdout
    assert "events_1d (" in done.stdout

"""`studytrack db rebuild-rollups`: the coarse rollups (`events_6h`, `events_1d`) made again from `events_1h`.

Every rollup is kept exact by the statements that write events, but only by this version's: an instance of an
earlier version still writing while a new deployment starts (Railway migrates before it stops the old one)
keeps the rollups it knew of, not one a migration has just added. The hourly rollup is kept by every version,
and the coarse ones are its sums, so they can be made again from it, exactly, also for days whose raw rows
retention has dropped. Writers wait (a SHARE lock on `events_1h`) until the new sums are committed; readers
go on reading the old ones meanwhile.
"""

from __future__ import annotations

import psycopg

_FROM_HOURS = """
    INSERT INTO {table} (tag, bucket, minutes, count)
    SELECT tag, date_bin(INTERVAL '{grain}', bucket, TIMESTAMPTZ '2000-01-03 00:00:00+00'), sum(minutes), sum(count)
    FROM events_1h GROUP BY 1, 2
"""
COARSE_ROLLUPS = {"events_6h": "6 hours", "events_1d": "1 day"}


def rebuild_coarse_rollups(url: str) -> dict[str, int]:
    """Each coarse rollup emptied and summed again from `events_1h`, in one transaction; its rows, per table."""
    rows = {}
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("LOCK TABLE events_1h IN SHARE MODE")
        for table, grain in COARSE_ROLLUPS.items():  # fixed names and grains, never request text
            conn.execute(f"DELETE FROM {table}")
            rows[table] = conn.execute(_FROM_HOURS.format(table=table, grain=grain)).rowcount
    return rows

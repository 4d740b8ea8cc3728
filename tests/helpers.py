"""Test data and an independent Python model of the bucket semantics (the oracle)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from studytrack.events.ingest import NewEvent
from tests.databases import Database

MONDAY_2000 = datetime(2000, 1, 3)
FIXED = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
}
MONTHS = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Session:
    time: datetime
    tag: str
    minutes: int
    user_id: str | None = None


def insert_sessions(db: Database, sessions: list[Session]) -> None:
    if sessions:
        db.write([NewEvent(uuid.uuid4(), s.time, s.tag, s.minutes, s.user_id, None, None) for s in sessions])


def to_instant(local: datetime, zone: ZoneInfo) -> datetime:
    """PostgreSQL's reading of a local time.

    In a DST gap it takes the offset before the gap; when ambiguous, the later (standard time) instant.
    """
    early, late = local.replace(tzinfo=zone, fold=0), local.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early.astimezone(UTC)
    round_trips = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local
    return (late if round_trips else early).astimezone(UTC)


def local_bucket(local: datetime, count: int, unit: str) -> datetime:
    if unit in FIXED:
        width = FIXED[unit] * count
        return MONDAY_2000 + ((local - MONDAY_2000) // width) * width
    width_months = count * MONTHS[unit]
    index = ((local.year - 2000) * 12 + local.month - 1) // width_months * width_months
    return datetime(2000 + index // 12, index % 12 + 1, 1)


def expected_buckets(
    sessions: list[Session], *, count: int, unit: str, tz: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """What GET /api/events/ must answer (fill=false), computed without SQL."""
    zone = ZoneInfo(tz)
    sums: dict[tuple[datetime, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in sessions:
        if start <= s.time < end:
            local = s.time.astimezone(zone).replace(tzinfo=None)
            key = (to_instant(local_bucket(local, count, unit), zone), s.tag)
            sums[key][0] += s.minutes
            sums[key][1] += 1
    return [
        {"bucket": bucket, "tag": tag, "minutes": m, "count": c, "avg_minutes": round(m / c, 2)}
        for (bucket, tag), (m, c) in sorted(sums.items())
    ]


def parse_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item | {"bucket": datetime.fromisoformat(item["bucket"])} for item in items]

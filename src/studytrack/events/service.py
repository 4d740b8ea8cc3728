"""Event operations: one function per endpoint, keyword-only, SQL from `queries.py`."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row

from studytrack.config import Settings
from studytrack.database.mode import DatabaseMode
from studytrack.events import queries
from studytrack.events.bounds import BucketBounds, bucket_bounds
from studytrack.events.errors import InvalidRequestError
from studytrack.events.models import BucketPublic, BucketSeries, EventPublic, SessionPage, Stats
from studytrack.events.params import BucketQuery, EventFilters, SessionQuery
from studytrack.events.rollup import (
    COARSE_GRAINS,
    DAY,
    HOUR,
    QUARTER_HOUR,
    SIX_HOURS,
    ceil_to,
    coarse_plan,
    floor_to,
)

Connection = AsyncConnection[Any]
MAX_CURSOR_CHARS = 256


async def tag_spellings(conn: Connection, tags: set[str]) -> dict[str, str]:
    """The spelling people see for each tag key (the key itself when none is stored)."""
    if not tags:
        return {}
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(queries.SELECT_TAG_SPELLINGS, {"tags": list(tags)})
        spelled: dict[str, str] = dict(await cur.fetchall())
    return {tag: spelled.get(tag, tag) for tag in tags}


async def get_event(conn: Connection, *, event_id: uuid.UUID) -> EventPublic | None:
    cur = await conn.execute(queries.SELECT_EVENT, {"id": event_id})
    row = await cur.fetchone()
    return EventPublic.model_validate(row) if row else None


def _filter_params(filters: EventFilters) -> dict[str, Any]:
    return {"tags": filters.tags, "user_id": filters.user_id, "start": filters.start, "end": filters.end}


@dataclass(frozen=True)
class ChartLimits:
    """What one chart may carry: buckets, rows (buckets x tags) and distinct tags (MAX_BUCKETS, ...)."""

    buckets: int
    rows: int
    tags: int

    @classmethod
    def of(cls, settings: Settings) -> ChartLimits:
        return cls(settings.max_buckets, settings.max_chart_rows, settings.max_chart_tags)


def _too_many_rows(limits: ChartLimits) -> InvalidRequestError:
    return InvalidRequestError(
        "too_many_rows",
        f"this chart would have more than {limits.rows} rows (buckets x tags, MAX_CHART_ROWS); "
        "ask for fewer tags (tags=...), a wider duration or a shorter range",
    )


def _too_many_tags(limits: ChartLimits) -> InvalidRequestError:
    return InvalidRequestError(
        "too_many_tags",
        f"this chart would show more than {limits.tags} tags (MAX_CHART_TAGS); "
        "name the ones you want with tags=..., or narrow it with user_id or a shorter range",
    )


def _check_request(query: BucketQuery, buckets: int, limits: ChartLimits) -> None:
    """Refuse what is too large before any SQL runs: buckets, requested tags, filled rows."""
    assert query.start is not None
    assert query.end is not None
    if buckets > limits.buckets:
        raise InvalidRequestError(
            "too_many_buckets",
            f"{query.width} buckets from {query.start.isoformat()} to {query.end.isoformat()} would be about "
            f"{buckets}; the limit is {limits.buckets}. Use a wider duration or a shorter range.",
        )
    if len(set(query.tags)) > limits.tags:
        raise _too_many_tags(limits)
    if query.fill and query.tags and buckets * len(set(query.tags)) > limits.rows:
        raise _too_many_rows(limits)


def _check_answer(rows: list[tuple[Any, ...]], buckets: int, query: BucketQuery, limits: ChartLimits) -> None:
    """Refuse an answer the data made too large: the query returns at most one row past the limit."""
    if len(rows) > limits.rows:
        raise _too_many_rows(limits)
    shown = len({row[1] for row in rows}) if not query.tags else len(set(query.tags))
    if shown > limits.tags:
        raise _too_many_tags(limits)
    if query.fill and buckets * shown > limits.rows:
        raise _too_many_rows(limits)


_ROLLUPS = ((HOUR, queries.CHART_FROM_HOURS), (QUARTER_HOUR, queries.CHART_FROM_QUARTER_HOURS))
_COARSE_CHARTS = {DAY: queries.CHART_FROM_DAYS, SIX_HOURS: queries.CHART_FROM_SIX_HOURS}


def _chart_statement(query: BucketQuery, bounds: BucketBounds, mode: DatabaseMode) -> tuple[str, dict[str, Any]]:
    """The cheapest rollup that answers like the raw rows (see `queries`), with the range shrunk to its grain."""
    assert query.start is not None
    assert query.end is not None
    if query.user_id is not None:  # the rollups have no user_id
        return (queries.CHART_FOR_USER_TAGS if query.tags else queries.CHART_FOR_USER), {}
    if mode.rollup:
        for grain, statement in _ROLLUPS:
            inner_start, inner_end = ceil_to(query.start, grain), floor_to(query.end, grain)
            if inner_start < inner_end and bounds.on_grid(inner_start, inner_end, grain):
                inner = {"inner_start": inner_start, "inner_end": inner_end}
                return _from_coarse(query, bounds, grain) or (statement, inner)
    return queries.CHART_FROM_EVENTS, {}


_PREPARED_CHARTS = frozenset((queries.CHART_FOR_USER, queries.CHART_FOR_USER_TAGS))


def _from_coarse(
    query: BucketQuery, bounds: BucketBounds, fine: timedelta | None, grains: tuple[timedelta, ...] = COARSE_GRAINS
) -> tuple[str, dict[str, Any]] | None:
    """A coarse rollup's statement (of `grains`: daily, six-hourly) when it reads less than the `fine` rollup
    would (None: whatever it would), else None. Buckets shorter than a day never gain from one (most of their
    hours would move): not even worked out."""
    assert query.start is not None
    assert query.end is not None
    fixed = query.width.fixed
    if fixed is not None and fixed < DAY:
        return None
    inner_start, inner_end = ceil_to(query.start, QUARTER_HOUR), floor_to(query.end, QUARTER_HOUR)
    if inner_start >= inner_end or not bounds.on_grid(inner_start, inner_end, QUARTER_HOUR):
        return None
    plan = coarse_plan(bounds.starts, inner_start, inner_end, fine, grains)
    if plan is None:
        return None
    return _COARSE_CHARTS[plan.grain], {
        "inner_start": inner_start, "inner_end": inner_end, "coarse_starts": list(plan.moved_starts),
        "coarse_start": plan.start, "coarse_end": plan.end, "moved_hours": list(plan.hours),
        "moved_quarters": list(plan.quarters),
    }  # fmt: skip


async def bucket_series(
    conn: Connection,
    *,
    query: BucketQuery,
    mode: DatabaseMode,
    limits: ChartLimits,
) -> BucketSeries:
    """Minutes and counts per bucket and tag, in the caller's timezone; `InvalidRequestError` when the chart would
    carry more than the limits' buckets, rows (buckets x tags) or distinct tags."""
    assert query.start is not None  # both set by BucketQuery's defaults
    assert query.end is not None
    width = query.width
    buckets = width.bucket_count(query.start, query.end)
    _check_request(query, buckets, limits)
    bounds = bucket_bounds(width, query.tz, query.start, query.end)
    statement, inner = _chart_statement(query, bounds, mode)
    params = _filter_params(query) | inner | {"starts": list(bounds.starts), "row_limit": limits.rows + 1}
    # With filters switched off by parameters a generic plan cannot pick the index for the actual user and tags
    # (a person's year of one tag at 10M events: 3.2 ms prepared, 1.4 ms planned), so those are planned each time;
    # a person's charts have their filters written in and are prepared (`queries.CHART_FOR_USER`).
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(statement, params, prepare=statement in _PREPARED_CHARTS)
        rows = await cur.fetchall()
    _check_answer(rows, buckets, query, limits)
    spellings = await tag_spellings(conn, {row[1] for row in rows} | set(query.tags))
    items = _slot_items(rows, bounds, fill=query.fill, tags=query.tags, spellings=spellings)
    return {"duration": str(width), "tz": query.tz, "start": query.start, "end": query.end, "items": items}


def _item(bucket: datetime, tag: str, minutes: int, count: int) -> BucketPublic:
    average = round(minutes / count, 2) if count else None
    return {"bucket": bucket, "tag": tag, "minutes": minutes, "count": count, "avg_minutes": average}


def _slot_items(
    rows: list[tuple[Any, ...]], bounds: BucketBounds, *, fill: bool, tags: list[str], spellings: dict[str, str]
) -> list[BucketPublic]:
    """Rows (slot, tag key, minutes, count), ordered -> items per (bucket, tag), each tag as `spellings` spell
    its key; with `fill`, every bucket for every tag shown."""
    if rows and rows[0][0] < 1:  # slot 0 is a row before the first start: it would land in a wrong bucket
        raise RuntimeError(
            f"a row before the first bucket start ({bounds.starts[0].isoformat()}): bounds and query disagree"
        )
    if not bounds.slot_is_bucket:
        rows = _add_up_slots(rows, bounds.bucket_of_slot)
    labels = bounds.shown  # from here on, row n is bucket n (1-based)
    if not fill:  # one item per row, built inline: a year of days is hundreds of items per request
        return [
            {"bucket": labels[slot - 1], "tag": spellings[tag], "minutes": minutes, "count": count,
             "avg_minutes": round(minutes / count, 2)}
            for slot, tag, minutes, count in rows
        ]  # fmt: skip
    totals = {(slot, tag): (minutes, count) for slot, tag, minutes, count in rows}
    shown = sorted(set(tags) if tags else {tag for _, tag in totals})
    keys = [(slot, tag) for slot in range(1, len(labels) + 1) for tag in shown]
    return [_item(labels[slot - 1], spellings[tag], *totals.get((slot, tag), (0, 0))) for slot, tag in keys]


def _add_up_slots(rows: list[tuple[Any, ...]], bucket_of_slot: tuple[int, ...]) -> list[tuple[Any, ...]]:
    """Rows per slot -> rows per bucket (1-based), ordered: the slots of one bucket added up."""
    totals: dict[tuple[int, str], list[int]] = {}
    for slot, tag, minutes, count in rows:
        total = totals.setdefault((bucket_of_slot[slot - 1] + 1, tag), [0, 0])
        total[0] += minutes
        total[1] += count
    return [(bucket, tag, minutes, count) for (bucket, tag), (minutes, count) in sorted(totals.items())]


def _encode_cursor(event: EventPublic) -> str:
    raw = json.dumps([event.time.isoformat(), str(event.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid_cursor() -> InvalidRequestError:
    return InvalidRequestError("invalid_cursor", "cursor is not one this service returned; pass next_cursor unchanged")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    if len(cursor) > MAX_CURSOR_CHARS:  # ours are ~90 characters: refuse a big one before decoding it
        raise _invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, id_text = json.loads(raw)
        time = datetime.fromisoformat(time_text)
        if time.tzinfo is None:
            raise ValueError("naive cursor time")
        return time, uuid.UUID(id_text)
    # RecursionError: a crafted cursor of nested arrays; whatever it holds, a cursor is the client's to fix.
    except (ValueError, TypeError, RecursionError, binascii.Error, UnicodeDecodeError):
        raise _invalid_cursor() from None


async def list_sessions(conn: Connection, *, query: SessionQuery) -> SessionPage:
    """Raw sessions, newest first, one page at a time."""
    params = _filter_params(query) | {"limit": query.limit + 1, "cursor_time": None, "cursor_id": None}
    if query.cursor is not None:
        params["cursor_time"], params["cursor_id"] = _decode_cursor(query.cursor)
    cur = await conn.execute(queries.SESSIONS, params, prepare=False)
    rows = await cur.fetchall()
    items = [EventPublic.model_validate(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return SessionPage(items=items, next_cursor=_encode_cursor(items[-1]) if more else None)


def _stats_statement(filters: EventFilters, mode: DatabaseMode) -> tuple[str, dict[str, Any]]:
    """Totals over all users come from the rollups (as the charts' do) unless the range holds no whole hour; a
    person's from their own prepared statement."""
    inner_start = None if filters.start is None else ceil_to(filters.start, HOUR)
    inner_end = None if filters.end is None else floor_to(filters.end, HOUR)
    if filters.user_id is not None:
        return queries.STATS_FOR_USER, {}
    if not mode.rollup:
        return queries.STATS, {}
    if inner_start is not None and inner_end is not None and inner_start >= inner_end:
        return queries.STATS, {}
    day_start = None if inner_start is None else ceil_to(inner_start, DAY)
    day_end = None if inner_end is None else floor_to(inner_end, DAY)
    if day_start is not None and day_end is not None and day_start >= day_end:  # no whole day: hours only
        day_start = day_end = inner_end
    inner = {"inner_start": inner_start, "inner_end": inner_end, "day_start": day_start, "day_end": day_end}
    return queries.STATS_FROM_DAYS, inner


async def session_stats(
    conn: Connection, *, filters: EventFilters, mode: DatabaseMode, max_tags: int = Settings.max_chart_tags
) -> Stats:
    """Totals in the CSV study tracker's shape; `InvalidRequestError` beyond `max_tags` tags (the answer lists each)."""
    statement, inner = _stats_statement(filters, mode)
    params = _filter_params(filters) | inner | {"tag_limit": max_tags + 1}
    cur = await conn.execute(statement, params, prepare=statement == queries.STATS_FOR_USER)
    rows = await cur.fetchall()
    if len(rows) > max_tags:
        raise InvalidRequestError(
            "too_many_tags",
            f"these totals would list more than {max_tags} tags (MAX_CHART_TAGS); "
            "name the ones you want with tags=..., or narrow them with user_id or start/end",
        )
    spellings = await tag_spellings(conn, {row["tag"] for row in rows})
    return Stats(
        total_time=sum(row["minutes"] for row in rows),
        total_sessions=sum(row["count"] for row in rows),
        time_by_tag={spellings[row["tag"]]: row["minutes"] for row in rows},
        sessions_by_tag={spellings[row["tag"]]: row["count"] for row in rows},
    )

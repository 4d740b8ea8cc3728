"""Writing events: identity, one multi-row statement per batch, and group commit for single POSTs.

Identity: an event is `(id, time)`, the hypertable's primary key. A client that sends its own `id` gets
exactly-once writes for free; for an event without one the id is derived from its content (see
`content_id`), so an app's retry or a re-imported export lands on the same key and is not stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from studytrack.database.mode import DatabaseMode
from studytrack.events import queries
from studytrack.events.models import EventCreate
from studytrack.events.rollup import refresh_after_write
from studytrack.web.metrics import count_ingested

log = logging.getLogger(__name__)

# Fixed namespace for content-derived ids: changing it would change every derived id.
CONTENT_NAMESPACE = uuid.UUID("5f0c6a53-2d0e-4c53-9a55-0f1d6c3b9e11")
_COMPARED = ("tag", "minutes", "user_id", "note", "source")


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: uuid.UUID
    time: datetime
    tag: str
    minutes: int
    user_id: str | None
    note: str | None
    source: str | None
    # The client sent its own id but no time ("now"): a retry must find the first attempt by id alone.
    floating: bool = False


class Outcome(StrEnum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"  # the same event was stored before: nothing written
    CONFLICT = "conflict"  # its (id, time) holds a different event: nothing written


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    event: NewEvent
    received_at: datetime | None = None  # INSERTED: when this statement stored it
    found: dict[str, Any] | None = None  # DUPLICATE / CONFLICT: the row that was already there

    @property
    def stored(self) -> dict[str, Any]:
        """The row as stored (for a conflict: the row that was already there). Built on demand: a batch
        answers with counts, and 10,000 dicts per batch would cost more than its JSON parsing."""
        if self.found is not None:
            return self.found
        assert self.received_at is not None
        return _as_stored(self.event, self.received_at)


def content_id(*, time: datetime, tag: str, minutes: int, user_id: str | None, source: str | None) -> uuid.UUID:
    """The id of an event sent without one: same person, app, tag, start instant and length = same event."""
    instant = time.astimezone(UTC).isoformat()
    key = "\x1f".join([source or "", user_id or "", tag, instant, str(minutes)])
    return uuid.uuid5(CONTENT_NAMESPACE, key)


def resolve(event: EventCreate, *, now: datetime) -> NewEvent:
    time = event.time or now
    event_id = event.id or content_id(
        time=time, tag=event.tag, minutes=event.minutes, user_id=event.user_id, source=event.source
    )
    floating = event.id is not None and event.time is None
    return NewEvent(event_id, time, event.tag, event.minutes, event.user_id, event.note, event.source, floating)


def _columns(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """One array per column. A column that is NULL (or false) for every event is sent as an empty array:
    `unnest` pads shorter arrays with NULLs, and most batches have no notes and no floating ids."""
    notes = [e.note for e in events]
    floating = [e.floating for e in events]
    return {
        "ids": [e.id for e in events],
        "times": [e.time for e in events],
        "tags": [e.tag for e in events],
        "minutes": [e.minutes for e in events],
        "user_ids": [e.user_id for e in events],
        "notes": notes if any(note is not None for note in notes) else [],
        "sources": [e.source for e in events],
        "floating": floating if any(floating) else [],
    }


def _as_stored(event: NewEvent, received_at: datetime) -> dict[str, Any]:
    """The row this statement inserted for `event`, without reading it back."""
    return {
        "id": event.id,
        "time": event.time.astimezone(UTC),
        "tag": event.tag,
        "minutes": event.minutes,
        "user_id": event.user_id,
        "note": event.note,
        "source": event.source,
        "received_at": received_at,
    }


def _one_time_per_floating_id(events: Sequence[NewEvent]) -> list[NewEvent]:
    """Floating events of one id in one statement all take the earliest of their times: one is stored,
    the others are its duplicates (or conflicts), as if they had arrived one after the other."""
    earliest: dict[uuid.UUID, datetime] = {}
    for event in events:
        if event.floating and (event.id not in earliest or event.time < earliest[event.id]):
            earliest[event.id] = event.time
    return [replace(event, time=earliest[event.id]) if event.floating else event for event in events]


async def _stored_rows(
    conn: AsyncConnection[Any], events: Sequence[NewEvent]
) -> tuple[dict[tuple[uuid.UUID, datetime], dict[str, Any]], dict[uuid.UUID, dict[str, Any]]]:
    """The stored rows that kept `events` from being inserted: by (id, time), and by id for floating ones."""
    fixed = [e for e in events if not e.floating]
    floating = [e.id for e in events if e.floating]
    by_key: dict[tuple[uuid.UUID, datetime], dict[str, Any]] = {}
    first: dict[uuid.UUID, dict[str, Any]] = {}
    if fixed:
        params = {"ids": [e.id for e in fixed], "times": [e.time for e in fixed]}
        cur = await conn.execute(queries.SELECT_EVENTS_BY_KEY, params)
        by_key = {(row["id"], row["time"]): row for row in await cur.fetchall()}
    if floating:
        cur = await conn.execute(queries.SELECT_FIRST_EVENTS, {"ids": floating})
        first = {row["id"]: row for row in await cur.fetchall()}
    return by_key, first


async def write_events(
    conn: AsyncConnection[Any], events: Sequence[NewEvent], *, rollup_table: bool = False, attempts: int = 3
) -> list[WriteResult]:
    """Insert all events in one statement (atomic on its own: on an autocommit connection it is committed
    when it returns; with floating ids, in a transaction that first locks them); one result per event, in order.

    `rollup_table`: plain mode's `events_15m` table gains the inserted rows in the same statement.
    Events that were not inserted are then read back (read only) to tell duplicates from conflicts.
    """
    statement = queries.INSERT_EVENTS_AND_ROLLUP if rollup_table else queries.INSERT_EVENTS
    floating_ids = sorted({e.id for e in events if e.floating})  # sorted: locks always taken in one order
    if floating_ids:
        events = _one_time_per_floating_id(events)
    async with conn.transaction() if floating_ids else contextlib.nullcontext():
        if floating_ids:
            await conn.execute(queries.LOCK_FLOATING_IDS, {"ids": floating_ids})
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(statement, _columns(events))
            rows = await cur.fetchall()
    if rows and len(rows) == len(events):
        # Each event inserts at most one row (a key sent twice in one batch inserts once): all are new.
        # One statement, one transaction: they share received_at.
        received_at = rows[0][2]
        return [WriteResult(Outcome.INSERTED, event, received_at=received_at) for event in events]
    # A floating event whose row was inserted kept its own time (its id was new).
    inserted = {(event_id, time): received_at for event_id, time, received_at in rows}
    missing = [e for e in events if (e.id, e.time) not in inserted]
    by_key, first = await _stored_rows(conn, missing)

    results: list[WriteResult | None] = []
    vanished: list[int] = []  # the row that blocked the insert was deleted before it could be read
    claimed: set[tuple[uuid.UUID, datetime]] = set()  # a key inserted by an earlier item of this batch
    for index, event in enumerate(events):
        key = (event.id, event.time)
        if key in inserted and key not in claimed:
            claimed.add(key)
            results.append(WriteResult(Outcome.INSERTED, event, received_at=inserted[key]))
            continue
        if key in inserted:
            stored: dict[str, Any] | None = _as_stored(event, inserted[key])
        elif event.floating:
            stored = first.get(event.id)
        else:
            stored = by_key.get(key)
        if stored is None:
            vanished.append(index)
            results.append(None)
            continue
        same = all(stored[name] == getattr(event, name) for name in _COMPARED)
        results.append(WriteResult(Outcome.DUPLICATE if same else Outcome.CONFLICT, event, found=stored))
    if vanished:  # a concurrent DELETE of the same id: write those events again
        if attempts <= 1:
            raise RuntimeError("events kept being deleted while they were written")
        retry = [events[index] for index in vanished]
        again = await write_events(conn, retry, rollup_table=rollup_table, attempts=attempts - 1)
        for index, result in zip(vanished, again, strict=True):
            results[index] = result
    return [result for result in results if result is not None]


ModeSource = Callable[[], Awaitable[DatabaseMode]]


class EventWriter:
    """Writes events with one insert statement and keeps the 15-minute rollup exact: in plain mode inside
    that statement, in TimescaleDB mode by refreshing the continuous aggregate right after it commits."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, mode: ModeSource, retention: timedelta | None) -> None:
        self._pool = pool
        self._mode = mode
        self._retention = retention

    async def write(self, events: Sequence[NewEvent]) -> list[WriteResult]:
        mode = await self._mode()
        rollup_table = mode.rollup and not mode.is_timescaledb
        async with self._pool.connection() as conn:  # autocommit: the insert commits as it completes
            results = await write_events(conn, events, rollup_table=rollup_table)
        count_ingested(result.outcome.value for result in results)  # committed
        if mode.rollup and mode.is_timescaledb:
            written = [e.time for e, r in zip(events, results, strict=True) if r.outcome is Outcome.INSERTED]
            if written:
                await refresh_after_write(self._pool, written, retention=self._retention)
        return results

    async def delete(self, event_id: uuid.UUID, *, user_id: str | None) -> bool:
        """Delete every row of this id (of `user_id`'s events when given); True when something went."""
        mode = await self._mode()
        rollup_table = mode.rollup and not mode.is_timescaledb
        statement = queries.DELETE_EVENT_AND_ROLLUP if rollup_table else queries.DELETE_EVENT
        async with self._pool.connection() as conn:
            cur = await conn.execute(statement, {"id": event_id, "user_id": user_id})
            times = [row["time"] for row in await cur.fetchall()]
        if times and mode.rollup and mode.is_timescaledb:
            await refresh_after_write(self._pool, times, retention=self._retention)
        return bool(times)


class GroupCommitter:
    """Single POSTs that arrive together share one INSERT and one COMMIT; each waits for its own result.

    While a write is in flight, new requests queue; the next write takes all of them (up to
    `max_batch`). Nothing is acknowledged before its transaction has committed.
    """

    def __init__(self, writer: EventWriter, *, max_batch: int = 512, writers: int = 2) -> None:
        self._writer = writer
        self._max_batch = max_batch
        self._writers = writers
        self._queue: asyncio.Queue[tuple[NewEvent, asyncio.Future[WriteResult]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write_forever()) for _ in range(self._writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, event: NewEvent) -> WriteResult:
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, future))
        return await future

    async def _write_forever(self) -> None:
        while True:
            group = [await self._queue.get()]
            while len(group) < self._max_batch and not self._queue.empty():
                group.append(self._queue.get_nowait())
            await self._write_group(group)

    async def _write_group(self, group: list[tuple[NewEvent, asyncio.Future[WriteResult]]]) -> None:
        try:
            results = await self._writer.write([event for event, _ in group])
        except Exception as exc:  # the database is down or refused: every waiter learns why
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

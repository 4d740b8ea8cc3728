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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

from studytrack.database.mode import DatabaseMode
from studytrack.events import queries
from studytrack.events.models import EventCreate, tag_key

log = logging.getLogger(__name__)

# Fixed namespace for content-derived ids: changing it would change every derived id.
CONTENT_NAMESPACE = uuid.UUID("5f0c6a53-2d0e-4c53-9a55-0f1d6c3b9e11")
_COMPARED = ("minutes", "user_id", "note", "source")


@dataclass(frozen=True, slots=True)
class NewEvent:
    id: uuid.UUID
    time: datetime
    tag: str  # the key (`tag_key`); `spelling` is how this event wrote it
    minutes: int
    user_id: str | None
    note: str | None
    source: str | None
    # The client sent its own id but no time ("now"): a retry must find the first attempt by id alone.
    floating: bool = False
    spelling: str | None = None  # None: the key itself


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
    tag = tag_key(event.tag)
    event_id = event.id or content_id(
        time=time, tag=tag, minutes=event.minutes, user_id=event.user_id, source=event.source
    )
    floating = event.id is not None and event.time is None
    return NewEvent(event_id, time, tag, event.minutes, event.user_id, event.note, event.source, floating, event.tag)


def _columns(events: Sequence[NewEvent]) -> dict[str, list[Any]]:
    """One array per column. A column that is NULL (or false) for every event is sent as an empty array:
    `unnest` pads shorter arrays with NULLs, and most batches have no notes and no floating ids."""
    notes = [e.note for e in events]
    floating = [e.floating for e in events]
    return {
        "ids": [e.id for e in events],
        "times": [e.time for e in events],
        "tags": [e.tag for e in events],
        "spellings": [e.spelling or e.tag for e in events],
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
        "tag": event.spelling or event.tag,
        "minutes": event.minutes,
        "user_id": event.user_id,
        "note": event.note,
        "source": event.source,
        "received_at": received_at,
    }


def _same_event(event: NewEvent, stored: dict[str, Any]) -> bool:
    """A true retry: the same content and start (a floating event takes the stored start) as the stored row.
    Tags compare by key: `stored` shows a spelling."""
    same_time = event.floating or stored["time"] == event.time
    same_tag = tag_key(stored["tag"]) == event.tag
    return same_time and same_tag and all(stored[name] == getattr(event, name) for name in _COMPARED)


def _compared(event: NewEvent, stored: dict[str, Any] | None) -> WriteResult:
    """A duplicate of `stored` (the event its id names), or a conflict; None: that event is gone (retention)."""
    if stored is not None and _same_event(event, stored):
        return WriteResult(Outcome.DUPLICATE, event, found=stored)
    return WriteResult(Outcome.CONFLICT, event, found=stored)


def _first_spellings(events: Sequence[NewEvent]) -> Sequence[NewEvent]:
    """Each tag in the first spelling it has in `events`: the one stored when the tag is new (first seen wins)."""
    first: dict[str, str | None] = {}
    for event in events:
        first.setdefault(event.tag, event.spelling)
    if all(first[event.tag] == event.spelling for event in events):
        return events
    return [replace(event, spelling=first[event.tag]) for event in events]


def _first_of_each_id(events: Sequence[NewEvent]) -> list[NewEvent]:
    """Each id once, its first occurrence, in id order: the statement's rows, locked in one order by all."""
    first: dict[uuid.UUID, NewEvent] = {}
    for event in events:
        first.setdefault(event.id, event)
    return sorted(first.values(), key=lambda event: event.id)


async def _claimed_events(conn: AsyncConnection[Any], ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """The stored event each id names (its columns NULL when it is gone); an id missing here is not claimed."""
    cur = await conn.execute(queries.SELECT_CLAIMED_EVENTS, {"ids": list(ids)})
    return {row.pop("claimed_id"): row for row in await cur.fetchall()}


async def _insert(
    conn: AsyncConnection[Any], events: Sequence[NewEvent], *, rollup_table: bool
) -> dict[tuple[uuid.UUID, datetime], datetime]:
    """Insert what is new in one statement; (id, time) -> received_at of each inserted row."""
    statement = queries.INSERT_EVENTS_AND_ROLLUP if rollup_table else queries.INSERT_EVENTS
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(statement, _columns(events))
        return {(event_id, time): received_at for event_id, time, received_at in await cur.fetchall()}


async def _write_unique(
    conn: AsyncConnection[Any], events: Sequence[NewEvent], *, rollup_table: bool, attempts: int
) -> dict[uuid.UUID, WriteResult]:
    """Write events of distinct ids; the result of each, by id. A floating event is inserted only with its own
    time (its id was new), so (id, time) finds every inserted row."""
    inserted = await _insert(conn, events, rollup_table=rollup_table)
    results = {
        event.id: WriteResult(Outcome.INSERTED, event, received_at=inserted[(event.id, event.time)])
        for event in events
        if (event.id, event.time) in inserted
    }
    if len(results) == len(events):  # the usual case: all new
        return results
    missing = [event for event in events if event.id not in results]
    claimed = await _claimed_events(conn, [event.id for event in missing])
    for event in missing:
        if event.id in claimed:
            row = claimed[event.id]
            results[event.id] = _compared(event, row if row["id"] is not None else None)
    vanished = [event for event in missing if event.id not in claimed]  # deleted before it could be read
    if vanished:  # a concurrent DELETE freed the id: write those events again
        if attempts <= 1:
            raise RuntimeError("events kept being deleted while they were written")
        results |= await _write_unique(conn, vanished, rollup_table=rollup_table, attempts=attempts - 1)
    return results


async def write_events(
    conn: AsyncConnection[Any], events: Sequence[NewEvent], *, rollup_table: bool = False, attempts: int = 3
) -> list[WriteResult]:
    """Insert all events in one statement (atomic on its own: on an autocommit connection it is committed when
    it returns); one result per event, in order.

    `rollup_table`: the rollups gain the inserted rows in the same statement. An id sent
    twice is written once, its first occurrence; the others are its duplicates, or conflicts when they differ.
    """
    events = _first_spellings(events)
    by_id = await _write_unique(conn, _first_of_each_id(events), rollup_table=rollup_table, attempts=attempts)
    results = []
    seen: set[uuid.UUID] = set()
    for event in events:
        first = by_id[event.id]
        if event.id in seen:
            stored = first.stored if first.outcome is Outcome.INSERTED or first.found else None
            results.append(_compared(event, stored))
        else:
            seen.add(event.id)
            results.append(first)
    return results


ModeSource = Callable[[], Awaitable[DatabaseMode]]
OnWritten = Callable[[Iterable[str]], None]  # told the outcome of each committed event (the service's metrics)
# Rows are written in id order, so writers cannot deadlock on events; a deadlock or serialization failure
# (the rollup, a foreign writer) is retried, a bounded number of times, before it reaches the client.
RETRYABLE = (errors.DeadlockDetected, errors.SerializationFailure)
WRITE_ATTEMPTS = 3


class EventWriter:
    """Writes events with one insert statement, which keeps the rollups exact in the same statement."""

    def __init__(
        self, pool: AsyncConnectionPool[Any], *, mode: ModeSource, on_written: OnWritten | None = None
    ) -> None:
        self._pool = pool
        self._mode = mode
        self._on_written = on_written

    async def write(self, events: Sequence[NewEvent]) -> list[WriteResult]:
        mode = await self._mode()
        results = await self._write_retrying(events, rollup_table=mode.rollup)
        if self._on_written is not None:
            self._on_written(result.outcome.value for result in results)  # committed
        return results

    async def _write_retrying(self, events: Sequence[NewEvent], *, rollup_table: bool) -> list[WriteResult]:
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self._pool.connection() as conn:  # autocommit: the insert commits as it completes
                    return await write_events(conn, events, rollup_table=rollup_table)
            except RETRYABLE as exc:  # the statement was rolled back whole: writing it again is safe
                if attempt == WRITE_ATTEMPTS:
                    raise
                log.info("write retried after %s (attempt %d)", exc.__class__.__name__, attempt)
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def delete(self, event_id: uuid.UUID, *, user_id: str | None) -> bool:
        """Delete every row of this id (of `user_id`'s events when given); True when something went."""
        mode = await self._mode()
        statement = queries.DELETE_EVENT_AND_ROLLUP if mode.rollup else queries.DELETE_EVENT
        async with self._pool.connection() as conn:
            cur = await conn.execute(statement, {"id": event_id, "user_id": user_id})
            return bool(await cur.fetchall())


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
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()  # the writers' loop: each waiter's future is made on it
        self._tasks = [self._loop.create_task(self._write_forever()) for _ in range(self._writers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, event: NewEvent) -> WriteResult:
        assert self._loop is not None, "start() the committer first"
        future: asyncio.Future[WriteResult] = self._loop.create_future()
        self._queue.put_nowait((event, future))  # unbounded: never waits
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

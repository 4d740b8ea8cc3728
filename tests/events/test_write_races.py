"""Writes racing a DELETE of the same session: the answer is still right and nothing fails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from studytrack.events import queries
from studytrack.events.ingest import NewEvent, Outcome, write_events
from tests.databases import create_database


class DeleteBeforeReadBack:
    """A real connection on which an admin's DELETE of `event_id` lands between the insert and its read-back."""

    def __init__(self, conn: AsyncConnection[Any], event_id: uuid.UUID) -> None:
        self._conn = conn
        self._event_id = event_id
        self.deleted = False

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if query == queries.SELECT_CLAIMED_EVENTS and not self.deleted:
            self.deleted = True
            await self._conn.execute(queries.DELETE_EVENT, {"id": self._event_id, "user_id": None})
        return await self._conn.execute(query, params, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:  # the insert itself runs untouched
        return self._conn.cursor(*args, **kwargs)


def test_a_resent_session_deleted_before_it_is_read_back_is_stored_again(server_url: str, settings: Settings) -> None:
    url = create_database(server_url, "write_races")
    run_migrations(url, settings)

    async def scenario() -> list[Outcome]:
        async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            event = NewEvent(uuid.uuid4(), datetime.now(UTC), "cka", 25, None, None, None)
            await write_events(conn, [event])
            racing = DeleteBeforeReadBack(conn, event.id)
            results = await write_events(cast(AsyncConnection[Any], racing), [event])
            assert racing.deleted
            return [result.outcome for result in results]

    assert asyncio.run(scenario()) == [Outcome.INSERTED]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)


def test_two_first_arrivals_of_an_id_without_a_time_store_one_session(server_url: str, settings: Settings) -> None:
    """A quick retry on another connection while the first attempt is still uncommitted: without the per-id
    lock, each would see no stored row and keep its own "now", storing the session twice."""
    url = create_database(server_url, "write_races")
    run_migrations(url, settings)
    event_id = uuid.uuid4()

    def arrival() -> NewEvent:
        return NewEvent(event_id, datetime.now(UTC), "cka", 25, None, None, None, floating=True)

    async def scenario() -> tuple[list[Outcome], list[Outcome]]:
        async with (
            await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as first_conn,
            await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as retry_conn,
        ):
            async with first_conn.transaction():  # the first attempt, not yet committed
                first = await write_events(first_conn, [arrival()])
                retry = asyncio.create_task(write_events(retry_conn, [arrival()]))
                await asyncio.sleep(0.5)
                assert not retry.done(), "the retry must wait for the first attempt to commit"
            return [r.outcome for r in first], [r.outcome for r in await retry]

    assert asyncio.run(scenario()) == ([Outcome.INSERTED], [Outcome.DUPLICATE])
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE id = %s", (event_id,)).fetchone() == (1,)


def test_one_id_without_a_time_twice_in_one_batch_is_stored_once(server_url: str, settings: Settings) -> None:
    url = create_database(server_url, "write_races")
    run_migrations(url, settings)
    event_id = uuid.uuid4()
    now = datetime.now(UTC)
    events = [
        NewEvent(event_id, now, "cka", 25, None, None, None, floating=True),
        NewEvent(event_id, now + timedelta(milliseconds=3), "cka", 25, None, None, None, floating=True),
    ]

    async def scenario() -> list[Outcome]:
        async with await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row) as conn:
            return [result.outcome for result in await write_events(conn, events)]

    assert asyncio.run(scenario()) == [Outcome.INSERTED, Outcome.DUPLICATE]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE id = %s", (event_id,)).fetchone() == (1,)

"""Hot standbys that serve reads, and which of them may answer now.

A monitor task samples the primary's WAL position, then each replica's replay position, every CHECK_SECONDS.
A replica's lag is the time since the newest primary sample it has replayed: an upper bound on how stale
its answers are, exact to one check. Measured against the primary, it also catches a standby that stopped
receiving WAL (its own replay timestamp would not), and it does not jump when an idle primary writes again.

Reads go to a fresh replica (reachable, a standby, lag within REPLICA_MAX_LAG_SECONDS), in turn; with none,
to the primary. While the primary is unreachable the lag cannot be measured, and every reachable standby
serves (a stale answer beats a 503). docs/scaling.md has the whole design.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from studytrack.config import Settings, redact_url
from studytrack.database import catalog
from studytrack.database.pool import DictConnection, make_pool
from studytrack.timeouts import within

log = logging.getLogger(__name__)
CHECK_SECONDS = 1.0  # how often the monitor looks: the lag's resolution and the longest a fault goes unseen
CHECK_TIMEOUT_SECONDS = 2.0  # a server that has not answered a check by then counts as unreachable
REPLAY_POLL_SECONDS = 0.05


class ReplicaState(StrEnum):
    OK = "ok"  # serves reads
    LAGGING = "lagging"  # further behind the primary than REPLICA_MAX_LAG_SECONDS, or not measured yet
    UNREACHABLE = "unreachable"
    NOT_A_STANDBY = "not_a_standby"  # not in recovery (a promoted standby, or the primary itself): never read


@dataclass
class Replica:
    name: str
    url: str
    pool: AsyncConnectionPool[DictConnection]
    reachable: bool = False
    standby: bool = False
    lag_seconds: float | None = None  # None: not measured (never caught up yet, or the primary is unreachable)
    caught_up_at: float | None = None  # monotonic time of the newest primary sample it has replayed
    lost: bool = False  # failed a check since it last answered one: its pool is replaced when it answers again
    monitor: DictConnection | None = field(default=None, repr=False)


class ReplicaSet:
    """The replicas of one primary, their pools and their state, kept current by a monitor task."""

    def __init__(
        self,
        primary_url: str,
        settings: Settings,
        *,
        on_checked: Callable[[ReplicaSet], None] | None = None,
    ) -> None:
        self.max_lag_seconds = settings.replica_max_lag_seconds
        self._settings = settings
        self.replicas = [
            Replica(f"replica-{number}", url, make_pool(url, settings))
            for number, url in enumerate(settings.database_replica_urls, start=1)
        ]
        self.primary_reachable = True  # until a check says otherwise
        self._primary_url = primary_url
        self._primary: DictConnection | None = None
        self._connect_timeout = min(settings.db_timeout_seconds, CHECK_TIMEOUT_SECONDS)
        # Enough samples to measure any lag up to the bound; a replica behind all of them is lagging anyway.
        self._samples: deque[tuple[float, int]] = deque(maxlen=math.ceil(self.max_lag_seconds / CHECK_SECONDS) + 2)
        self._turn = itertools.count()
        self._on_checked = on_checked
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def state(self, replica: Replica) -> ReplicaState:
        if not replica.reachable:
            return ReplicaState.UNREACHABLE
        if not replica.standby:
            return ReplicaState.NOT_A_STANDBY
        if not self.primary_reachable:
            return ReplicaState.OK
        fresh = replica.lag_seconds is not None and replica.lag_seconds <= self.max_lag_seconds
        return ReplicaState.OK if fresh else ReplicaState.LAGGING

    def serving(self) -> list[Replica]:
        return [replica for replica in self.replicas if self.state(replica) is ReplicaState.OK]

    def pick(self) -> Replica | None:
        """The replica for the next read, in turn among those serving; None: read from the primary."""
        serving = self.serving()
        return serving[next(self._turn) % len(serving)] if serving else None

    def stand_in(self) -> Replica | None:
        """A serving replica while the primary is unreachable (for reads the primary usually answers)."""
        return None if self.primary_reachable else self.pick()

    def set_unreachable(self, replica: Replica) -> None:
        """A read got no connection there in time: no more reads there until the next check.

        Its pool is kept: a busy replica looks the same to a read, and only the monitor can tell it is gone."""
        if replica.reachable:
            log.warning("%s: no connection for a read; reading from the primary until the next check", replica.name)
        replica.reachable = False

    async def open(self) -> None:
        for replica in self.replicas:
            log.info("%s: %s", replica.name, redact_url(replica.url))
            await replica.pool.open(wait=False)  # serve even while a replica is still starting
        try:
            await self.check()  # the first request already knows where to read
        except Exception:  # never keep the service from starting; the monitor tries again in a second
            log.exception("replica check failed")
        self._task = asyncio.create_task(self._watch(), name="replica-monitor")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for replica in self.replicas:
            await self._drop(replica.monitor)
            await replica.pool.close()
        await asyncio.gather(*self._closing)
        await self._drop(self._primary)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            try:
                await self.check()
            except Exception:  # the monitor must outlive any surprise; the next check tries again
                log.exception("replica check failed")

    async def check(self) -> None:
        """One round: the primary's position first, then every replica's (an earlier sample bounds the lag)."""
        await self._check_primary()
        await asyncio.gather(*(self._check_replica(replica) for replica in self.replicas))
        if self._on_checked is not None:
            self._on_checked(self)

    async def _check_primary(self) -> None:
        sampled = time.monotonic()
        try:
            self._primary, row = await self._position(self._primary, self._primary_url, catalog.PRIMARY_WAL_POSITION)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            if self.primary_reachable:
                log.warning("primary unreachable for the replica monitor (%s)", exc.__class__.__name__)
            await self._drop(self._primary)
            self.primary_reachable, self._primary = False, None
            return
        if not self.primary_reachable:
            log.info("primary reachable again")
        self.primary_reachable = True
        self._samples.append((sampled, int(row["lsn"])))

    async def _check_replica(self, replica: Replica) -> None:
        was = self.state(replica)
        try:
            replica.monitor, row = await self._position(replica.monitor, replica.url, catalog.REPLICA_WAL_POSITION)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._drop(replica.monitor)
            replica.reachable, replica.lag_seconds, replica.monitor, replica.lost = False, None, None, True
            self._log_change(replica, was, exc.__class__.__name__)
            return
        if replica.lost:
            await self._renew_pool(replica)
        replica.reachable, replica.standby, replica.lost = True, bool(row["standby"]), False
        if replica.standby and row["lsn"] is not None:
            replayed = int(row["lsn"])
            caught_up = [at for at, position in self._samples if position <= replayed]
            if caught_up:
                replica.caught_up_at = max(caught_up[-1], replica.caught_up_at or 0.0)
        caught_up_at, replica.lag_seconds = replica.caught_up_at, None
        if replica.standby and self.primary_reachable and caught_up_at is not None:
            replica.lag_seconds = time.monotonic() - caught_up_at
        self._log_change(replica, was, None)

    async def _renew_pool(self, replica: Replica) -> None:
        """A fresh pool for a replica that answers again: the old one may wait seconds in its reconnect backoff."""
        old, replica.pool = replica.pool, make_pool(replica.url, self._settings)
        await replica.pool.open(wait=False)
        closing = asyncio.create_task(old.close())  # connections still lent out close as they come back
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def _log_change(self, replica: Replica, was: ReplicaState, reason: str | None) -> None:
        now = self.state(replica)
        if now is not was:
            lag = "" if replica.lag_seconds is None else f", lag {replica.lag_seconds:.1f} s"
            log.warning("%s: %s -> %s%s%s", replica.name, was, now, lag, f" ({reason})" if reason else "")

    async def _position(
        self, conn: DictConnection | None, url: str, query: str
    ) -> tuple[DictConnection, dict[str, Any]]:
        async def run() -> tuple[DictConnection, dict[str, Any]]:
            monitor = conn if conn is not None and not conn.closed else await self._connect(url)
            try:
                async with monitor.cursor(row_factory=dict_row) as cur:
                    await cur.execute(query)
                    row = await cur.fetchone()
            except BaseException:
                if monitor is not conn:  # new and already failing: the caller never sees it to close it
                    await self._drop(monitor)
                raise
            assert row is not None
            return monitor, row

        return await within(CHECK_TIMEOUT_SECONDS, run())

    async def _connect(self, url: str) -> DictConnection:
        return await _connect(url, self._connect_timeout)

    @staticmethod
    async def _drop(conn: DictConnection | None) -> None:
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


async def _connect(url: str, seconds: float) -> DictConnection:
    return await DictConnection.connect(
        url,
        autocommit=True,
        row_factory=dict_row,
        connect_timeout=max(1, math.ceil(seconds)),
        application_name="studytrack-replica-monitor",
    )


async def _replays_up_to(url: str, position: int, deadline: float) -> bool:
    """Whether the standby at `url` replays up to `position` before `deadline` (monotonic)."""
    async with await _connect(url, CHECK_TIMEOUT_SECONDS) as conn:
        while True:
            row = await (await conn.execute(catalog.REPLICA_WAL_POSITION)).fetchone()
            if row is None or not row["standby"] or row["lsn"] is None:
                return False  # not a standby: never read
            if int(row["lsn"]) >= position:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(REPLAY_POLL_SECONDS)


async def caught_up_replica(primary_url: str, settings: Settings) -> tuple[str, str] | None:
    """(name, URL) of the first replica that has replayed everything the primary had committed when asked,
    waiting up to REPLICA_MAX_LAG_SECONDS in all; None: read the primary (`studytrack export`)."""
    if not settings.database_replica_urls:
        return None
    async with await _connect(primary_url, settings.db_timeout_seconds) as conn:
        row = await (await conn.execute(catalog.PRIMARY_WAL_POSITION)).fetchone()
    assert row is not None
    deadline = time.monotonic() + settings.replica_max_lag_seconds
    for number, url in enumerate(settings.database_replica_urls, start=1):
        try:
            if await _replays_up_to(url, int(row["lsn"]), deadline):
                return f"replica-{number}", url
        except (psycopg.Error, OSError) as exc:
            log.warning("replica-%d: unreachable (%s)", number, exc.__class__.__name__)
    return None

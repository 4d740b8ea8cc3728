"""A small harness for fault tests: a real gunicorn on loopback, a bounded load generator, the accounting.

* `gunicorn(...)` starts `gunicorn -w N 'studytrack.web.app:create_app()'` with the production
  configuration, bound to 127.0.0.1 only, in its own process group (teardown kills the whole group).
* `Load` sends single `POST /api/events/` from several async clients in a thread of its own, each event
  with its own id and start time, retrying a failed or timed-out request with the same body. It is
  bounded by an event count and a deadline and stops by itself.
* `account(...)` compares what was acknowledged with what the database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from tests.environment import clean_environ
from tests.live import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
LOOPBACK = "127.0.0.1"
_BOOTED = re.compile(r"Booting worker with pid: (\d+)")
_STARTED = re.compile(r"\[(\d+)\] \[INFO\] Application startup complete")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> float:
    """Seconds it took; AssertionError naming `what` after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


def create_admin_token(database_url: str, name: str, cwd: Path) -> str:
    """`studytrack token create --scope admin`, as an operator would run it."""
    created = subprocess.run(
        [sys.executable, "-m", "studytrack", "token", "create", "--name", name, "--scope", "admin"],
        env=clean_environ(DATABASE_URL=database_url, LOG_LEVEL="warning"),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    return created.stdout.strip().splitlines()[-1]


# ---- the server -------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def booted_workers(self) -> list[int]:
        return [int(pid) for pid in _BOOTED.findall(self.output())]

    def started_workers(self) -> set[int]:
        return {int(pid) for pid in _STARTED.findall(self.output())}

    def live_workers(self) -> list[int]:
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [child.pid for child in children if child.status() != psutil.STATUS_ZOMBIE]

    def connections(self, pid: int) -> int:
        """Established client connections that worker `pid` holds."""
        try:
            found = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            return 0
        return sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == self.port for c in found)

    def wait_healthy(self, timeout: float = 60) -> float:
        def healthy() -> bool:
            assert self.process.poll() is None, f"gunicorn exited:\n{self.output()[-4000:]}"
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(f"{self.base_url}/healthz", timeout=3).status_code == 200
            return False

        return wait_until(healthy, timeout, f"{self.base_url}/healthz to answer 200", interval=0.2)

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left; bounded."""
        for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
                break
        self.process.wait(timeout=10)


@contextlib.contextmanager
def gunicorn(database_url: str, *, workers: int, workdir: Path, **settings: str) -> Iterator[Server]:
    """gunicorn with Uvicorn workers and the production configuration, on a free loopback port."""
    port = free_port()
    log = workdir / f"gunicorn-{port}.log"
    env = clean_environ(DATABASE_URL=database_url, LOG_LEVEL="info", LOG_FORMAT="text", **settings)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:studytrack.web.gunicorn_conf",
        "-w",
        str(workers),
        "-b",
        f"{LOOPBACK}:{port}",
        "--graceful-timeout",
        "5",
        "studytrack.web.app:create_app()",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=workdir,  # no .env here: only the environment configures the server
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, log)
    try:
        server.wait_healthy()
        wait_until(lambda: len(server.started_workers()) >= workers, 30, f"{workers} workers to start")
        yield server
    finally:
        server.stop()


# ---- the load ---------------------------------------------------------------------------------------


def make_events(count: int, *, tag: str) -> list[dict[str, Any]]:
    """Events with client ids and explicit start times, so that a retry is the very same request.

    An event's identity is (id, time): sent without a time, each retry would be stamped with its own `now`.
    """
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return [
        {
            "id": str(uuid.uuid4()),
            "time": (start + timedelta(seconds=i)).isoformat(),
            "tag": tag,
            "minutes": 1 + i % 90,
            "source": "fault-test",
        }
        for i in range(count)
    ]


@dataclass
class Attempt:
    event_id: str
    started: float  # time.monotonic()
    seconds: float
    outcome: str  # the status code, or the transport error's class name
    body: Any = None


@dataclass
class Tally:
    sent: int = 0  # distinct events whose first request went out
    attempts: list[Attempt] = field(default_factory=list)
    acknowledged: dict[str, int] = field(default_factory=dict)  # id -> 201 or 200
    refused: dict[str, Attempt] = field(default_factory=dict)  # a 4xx other than the expected ones: a bug

    def outcomes(self) -> Counter[str]:
        return Counter(attempt.outcome for attempt in self.attempts)

    @property
    def already_stored(self) -> int:
        """Events acknowledged by a 200 to a retry: an earlier attempt was committed but its answer lost."""
        return sum(status == 200 for status in self.acknowledged.values())


class Load:
    """Single POSTs from `clients` concurrent async clients, in a thread; bounded by `deadline` seconds.

    Each request uses `timeouts[attempt]` (the last one for later attempts). A transport error, a timeout
    or a 5xx is retried with the same body after `backoff` seconds, until the deadline. Use it as a context
    manager: it starts on entry, and leaving the block (a failed assertion too) stops it at once.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        events: Sequence[dict[str, Any]],
        *,
        clients: int,
        deadline: float,
        timeouts: Sequence[float] = (10.0,),
        backoff: float = 0.1,
        pace: float = 0.0,
    ) -> None:
        self.base_url, self.events, self.clients = base_url, list(events), clients
        self.headers = {"Authorization": f"Bearer {token}"}
        self.deadline_seconds, self.timeouts, self.backoff, self.pace = deadline, tuple(timeouts), backoff, pace
        self.tally = Tally()
        self._stop_sending = threading.Event()
        self._abort = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="load", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._abort.set()
        self._thread.join(timeout=30)

    def stop_sending(self) -> None:
        """Send no new events; those in flight are still retried until acknowledged or the deadline."""
        self._stop_sending.set()

    def join(self) -> Tally:
        self._thread.join(timeout=self.deadline_seconds + 30)
        assert not self._thread.is_alive(), "the load generator did not stop"
        if self._error is not None:
            raise self._error
        return self.tally

    @property
    def acknowledged(self) -> int:
        return len(self.tally.acknowledged)

    async def _run(self) -> None:
        try:
            pending = iter(self.events)
            limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
            async with httpx.AsyncClient(base_url=self.base_url, headers=self.headers, limits=limits) as client:
                await asyncio.gather(*(self._client(client, pending) for _ in range(self.clients)))
        except BaseException as exc:  # surfaced by join()
            self._error = exc

    async def _client(self, client: httpx.AsyncClient, pending: Iterator[dict[str, Any]]) -> None:
        deadline = self.started + self.deadline_seconds
        while not self._stop_sending.is_set() and not self._abort.is_set() and time.monotonic() < deadline:
            event = next(pending, None)
            if event is None:
                return
            self.tally.sent += 1
            await self._deliver(client, event, deadline)
            if self.pace:
                await asyncio.sleep(self.pace)

    async def _deliver(self, client: httpx.AsyncClient, event: dict[str, Any], deadline: float) -> None:
        attempt = 0
        while time.monotonic() < deadline and not self._abort.is_set():
            timeout = self.timeouts[min(attempt, len(self.timeouts) - 1)]
            started = time.monotonic()
            try:
                response = await client.post(
                    "/api/events/", json=event, timeout=httpx.Timeout(timeout, connect=min(timeout * 10, 5.0))
                )
            except httpx.TransportError as exc:  # timeouts, resets, refused connections
                self.tally.attempts.append(
                    Attempt(event["id"], started, time.monotonic() - started, type(exc).__name__)
                )
            else:
                seconds = time.monotonic() - started
                body = response.json() if response.headers.get("content-type") == "application/json" else None
                self.tally.attempts.append(Attempt(event["id"], started, seconds, str(response.status_code), body))
                if response.status_code in (200, 201):
                    self.tally.acknowledged[event["id"]] = response.status_code
                    return
                if response.status_code < 500:
                    self.tally.refused[event["id"]] = self.tally.attempts[-1]
                    return
            attempt += 1
            await asyncio.sleep(min(self.backoff * attempt, 1.0))


# ---- the accounting ---------------------------------------------------------------------------------


def stored_counts(database_url: str, ids: Sequence[str]) -> Counter[str]:
    """How many rows the database holds for each of `ids`."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id::text, count(*) FROM events WHERE id = ANY(%s::uuid[]) GROUP BY id", (list(ids),)
        ).fetchall()
    return Counter({row[0]: int(row[1]) for row in rows})


def account(database_url: str, tally: Tally, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """sent / acknowledged / stored / lost / duplicates, from the client's and the database's side."""
    counts = stored_counts(database_url, [event["id"] for event in events])
    acknowledged = set(tally.acknowledged)
    return {
        "sent": tally.sent,
        "requests": len(tally.attempts),
        "acknowledged": len(acknowledged),
        "acknowledged_by_retry_as_already_stored": tally.already_stored,
        "stored": len(counts),
        "stored_but_unacknowledged": len(set(counts) - acknowledged),
        "lost": len(acknowledged - set(counts)),
        "duplicates": sum(count - 1 for count in counts.values()),
        "refused": len(tally.refused),
        "outcomes": dict(sorted(tally.outcomes().items())),
    }


def record(name: str, figures: dict[str, Any]) -> None:
    """Print the figures (`pytest -s` shows them) and keep them in test-artifacts/faults.json."""
    print(f"\n[faults] {name}: {json.dumps(figures, sort_keys=True)}", flush=True)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "faults.json"
    try:
        results = json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        results = {}
    results[name] = figures | {"recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

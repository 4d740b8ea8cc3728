"""`GET /metrics` in the Prometheus text format, and the counts and timings of every request.

* `studytrack_http_requests_total{method, route, status}` and `studytrack_http_request_duration_seconds
  {method, route}`: `route` is the route's template (`/api/events/{event_id}/`), never the raw path, so the
  number of series stays bounded; requests no route matched are `route="unmatched"`.
* `studytrack_ingested_events_total{outcome}`: sessions written by any ingest path (single POST, batch,
  drop-in), `inserted`, `duplicate` or `conflict`, counted once their transaction has committed.
* `studytrack_db_pool_*`: the connection pool (open connections, idle ones, requests waiting, the maximum),
  read from psycopg_pool when scraped and once a second by each worker (`report_forever`), busy or idle.

Requests are tallied in plain dictionaries by each worker and added to prometheus_client once a second, at
each scrape and at shutdown: its locks and per-bucket loop cost a no-op request more than all else the frame
does (bench/README.md, "Batched request metrics"). So a scrape sees the requests other workers answered in the
last second a second later; its own worker's are exact.

Several gunicorn workers: set `PROMETHEUS_MULTIPROC_DIR` to an empty directory writable by the workers (the
gunicorn configuration empties it at start and forgets the gauges of a worker that exits). Each worker then
writes its samples there and any worker's `/metrics` reports the totals of all of them; pool gauges are
summed over the live workers. Without it, each process reports its own numbers only.

`/metrics` needs no token: it holds counts and timings per route, no session data and no secrets, and
scrapers rarely send one. Keep it off the public internet at the proxy when that matters.
"""

from __future__ import annotations

import asyncio
import math
import os
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from fastapi import Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from psycopg_pool import AsyncConnectionPool
from starlette.types import Scope

from studytrack.web.slashes import SlashTolerantRouter

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# prometheus_client chooses file-backed values when this is set as it is imported: decide the same way, once.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_DIR))
if MULTIPROCESS:  # the metrics below open their files there at once (the app imports this; the CLI does not)
    os.makedirs(os.environ[MULTIPROC_DIR], exist_ok=True)
UNMATCHED = "unmatched"
OUTCOMES = ("inserted", "duplicate", "conflict")
REPORT_SECONDS = 1.0  # how often each worker reads the pool and adds its request tallies
LATENCY_BUCKETS = Histogram.DEFAULT_BUCKETS  # seconds
_UPPER_BOUNDS = [*(float(bound) for bound in LATENCY_BUCKETS if bound != math.inf), math.inf]  # as Histogram's
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUESTS = Counter(
    "studytrack_http_requests", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "studytrack_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
INGESTED = Counter(
    "studytrack_ingested_events",
    "Study sessions sent to be stored, by what happened once committed: inserted, duplicate (already stored, "
    "nothing written) or conflict (its id and time hold another session).",
    ["outcome"],
)
for _outcome in OUTCOMES:
    INGESTED.labels(_outcome)  # every outcome is reported from the start, at 0

_POOL_GAUGES = {
    "pool_size": Gauge("studytrack_db_pool_connections", "Open database connections.", multiprocess_mode="livesum"),
    "pool_available": Gauge(
        "studytrack_db_pool_available_connections",
        "Open connections idle in the pool.",
        multiprocess_mode="livesum",
    ),
    "requests_waiting": Gauge(
        "studytrack_db_pool_waiting_requests",
        "Requests waiting for a connection (all in use).",
        multiprocess_mode="livesum",
    ),
    "pool_max": Gauge(
        "studytrack_db_pool_max_connections", "Most connections the pool may open.", multiprocess_mode="livesum"
    ),
}

router = SlashTolerantRouter(tags=["operations"])


def count_ingested(outcomes: Iterable[str]) -> None:
    """Count written sessions by outcome (`Outcome` values), after their transaction committed."""
    tally: dict[str, int] = {}
    for outcome in outcomes:
        tally[outcome] = tally.get(outcome, 0) + 1
    for outcome, count in tally.items():
        INGESTED.labels(outcome).inc(count)


def observe_pool(pool: AsyncConnectionPool[Any]) -> None:
    stats = pool.get_stats()
    for key, gauge in _POOL_GAUGES.items():
        gauge.set(stats.get(key, 0))


async def report_forever(
    pool: AsyncConnectionPool[Any], requests: RequestMetrics, seconds: float = REPORT_SECONDS
) -> None:
    """The pool gauges and the request tallies, every `seconds` until cancelled: no request pays for them,
    and in multiprocess mode an idle worker's gauges are as fresh as a busy one's."""
    while True:
        observe_pool(pool)
        requests.flush()
        await asyncio.sleep(seconds)


def _route_label(route: object) -> str:
    path = getattr(route, "documented_path", None) or getattr(route, "path", None)  # one label per route
    return path if isinstance(path, str) and path else UNMATCHED


class _Tally:
    """One method, route and status: the requests answered since the last flush, by latency bucket."""

    __slots__ = ("buckets", "count", "counter", "histogram", "seconds")

    def __init__(self, method: str, route: str, status: int) -> None:
        self.counter = REQUESTS.labels(method, route, str(status))
        self.histogram = LATENCY.labels(method, route)
        self.count, self.seconds, self.buckets = 0, 0.0, [0] * len(_UPPER_BOUNDS)

    def flush(self) -> None:
        """Adds the tally to prometheus_client, as `count` calls of `observe` would, and starts again.
        Its histogram has no call to add many observations: its buckets' and sum's own `inc` is used."""
        self.counter.inc(self.count)
        self.histogram._sum.inc(self.seconds)
        for bucket, count in zip(self.histogram._buckets, self.buckets, strict=True):
            if count:
                bucket.inc(count)
        self.count, self.seconds, self.buckets = 0, 0.0, [0] * len(_UPPER_BOUNDS)


class RequestMetrics:
    """Counts and times HTTP requests (`frame.py` calls `observe` once a response is sent or has failed) in
    tallies that `flush` adds to prometheus_client. Each method, route and status has its tally, kept under
    the route object's identity: one dictionary lookup per request (the keys are bounded: the app's routes,
    the known methods and `other`, the statuses we send)."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, int, int], _Tally] = {}

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method, route = scope["method"], scope.get("route")
        method = method if method in _METHODS else "other"
        key = (method, id(route), status)  # routes are not hashable; the app's live as long as it does
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = _Tally(method, _route_label(route), status)
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(_UPPER_BOUNDS, seconds)] += 1  # the first bound >= seconds, as `observe`

    def flush(self) -> None:
        for tally in self._tallies.values():
            if tally.count:
                tally.flush()


def _registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return REGISTRY
    registry = CollectorRegistry()
    # Every worker's samples, read from the files in PROMETHEUS_MULTIPROC_DIR.
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: requests, latency, ingested sessions, database pool. Needs no token."""
    observe_pool(request.app.state.pool)
    request.app.state.request_metrics.flush()
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

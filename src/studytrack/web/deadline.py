"""Every request answers within DB_TIMEOUT_SECONDS plus a margin, whatever the database does.

A database that hangs (its processes stopped, a network that drops packets silently) never answers, and
cancelling a query on it makes psycopg wait up to 10 s more for the server to confirm. So at the deadline the
request gets a 503 from a task of its own, at once, and its work is cancelled and finishes in the background
(psycopg closes a connection it cannot cancel; the pool replaces it). `frame.py` sends the 503 and drops
whatever the abandoned work answers later.

The requests in flight are swept by one timer per worker every `SWEEP_SECONDS` while any are in flight: a
timer per request cost more than the rest of the deadline (bench/README.md, "One frame").
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from starlette.responses import JSONResponse

from studytrack.web.errors import error_response

MARGIN_SECONDS = 2.0  # beyond DB_TIMEOUT_SECONDS: the pool wait and the statement may each take part of it
SWEEP_SECONDS = 0.1  # how late past its deadline a request may be answered


class Expiring(Protocol):
    def expire(self) -> None:
        """Called once, when the deadline has passed and the request is still watched."""


class Deadlines:
    """The requests of each event loop in the order they arrived, which is the order they fall due (all
    wait `seconds`)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._due: dict[asyncio.AbstractEventLoop, dict[Expiring, float]] = {}

    def watch(self, request: Expiring) -> None:
        loop = asyncio.get_running_loop()
        due = self._due.get(loop)
        if due is None:
            due = self._due[loop] = {}
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)
        due[request] = time.monotonic() + self.seconds

    def release(self, request: Expiring) -> None:
        due = self._due.get(asyncio.get_running_loop())
        if due is not None:  # None: the sweep expired the last request and stopped
            due.pop(request, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        due = self._due[loop]
        now = time.monotonic()
        for request, at in list(due.items()):
            if at > now:
                break
            del due[request]
            request.expire()
        if due:
            loop.call_later(SWEEP_SECONDS, self._sweep, loop)
        else:
            del self._due[loop]  # the next request starts the sweep again

    def answer(self) -> JSONResponse:
        message = f"the database did not answer within {self.seconds:g} s; retry shortly"
        return error_response(503, "database_timeout", message, headers={"Retry-After": "5"})

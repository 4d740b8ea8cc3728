"""Every request answers within DB_TIMEOUT_SECONDS plus a margin, whatever the database does.

A database that hangs (its processes stopped, a network that drops packets silently) never answers, and
cancelling a query on it makes psycopg wait up to 10 s more for the server to confirm. So the work is run in a
task that the answer does not wait for: past the deadline the client gets a 503 at once, the task is cancelled
and finishes in the background (psycopg closes a connection it cannot cancel; the pool replaces it).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Coroutine
from typing import Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studytrack.timeouts import retrieve
from studytrack.web.errors import error_response

log = logging.getLogger(__name__)
MARGIN_SECONDS = 2.0  # beyond DB_TIMEOUT_SECONDS: the pool wait and the statement may each take part of it


def _wake(waiter: asyncio.Future[None], *_: object) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _first_of(loop: asyncio.AbstractEventLoop, task: asyncio.Task[None], seconds: float) -> None:
    """Until `task` is done or `seconds` have passed, whichever comes first (`asyncio.wait` for one task,
    without its sets and per-call callbacks)."""
    waiter = loop.create_future()
    wake = functools.partial(_wake, waiter)
    timer = loop.call_later(seconds, wake)
    task.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()


class DeadlineMiddleware:
    """Pure ASGI: a request that has not started its answer by the deadline gets a 503 `database_timeout`."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = late = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if late:
                return  # the 503 was sent: whatever the abandoned work answers is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        loop = asyncio.get_running_loop()
        work = cast(Coroutine[Any, Any, None], self.app(scope, receive, guarded_send))  # ASGI apps are coroutines
        task = loop.create_task(work)
        try:
            await _first_of(loop, task, self.seconds)
        except asyncio.CancelledError:  # the server cut the request (a quick shutdown): cut its work too
            task.cancel()
            task.add_done_callback(retrieve)
            raise
        if task.done() or started:  # answered, or already streaming its answer: let it finish
            await task
            return
        late = True
        task.cancel()
        task.add_done_callback(retrieve)
        log.warning("%s %s: no answer within %g s; answered 503", scope["method"], scope["path"], self.seconds)
        message = f"the database did not answer within {self.seconds:g} s; retry shortly"
        await error_response(503, "database_timeout", message, headers={"Retry-After": "5"})(scope, receive, send)

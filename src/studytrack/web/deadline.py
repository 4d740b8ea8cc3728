"""Every request answers within DB_TIMEOUT_SECONDS plus a margin, whatever the database does.

A database that hangs (its processes stopped, a network that drops packets silently) never answers, and
cancelling a query on it makes psycopg wait up to 10 s more for the server to confirm. So at the deadline a
timer sends the client a 503 from a task of its own, at once, and cancels the request's work, which finishes
in the background (psycopg closes a connection it cannot cancel; the pool replaces it). The work runs in the
request's own task: no second task per request, only the timer.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studytrack.timeouts import retrieve
from studytrack.web.errors import error_response

log = logging.getLogger(__name__)
MARGIN_SECONDS = 2.0  # beyond DB_TIMEOUT_SECONDS: the pool wait and the statement may each take part of it


class _Request:
    """One request's answer as the deadline sees it: started by the app, or answered late with a 503."""

    __slots__ = ("late_answer", "send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False
        self.late_answer: asyncio.Task[None] | None = None

    async def guarded_send(self, message: Message) -> None:
        if self.late_answer is not None:
            return  # the 503 was sent: whatever the abandoned work answers is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class DeadlineMiddleware:
    """Pure ASGI: a request that has not started its answer by the deadline gets a 503 `database_timeout`."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(send)
        work = asyncio.current_task()
        assert work is not None  # ASGI apps run in a task
        timer = asyncio.get_running_loop().call_later(self.seconds, self._expire, request, work, scope, receive)
        try:
            await self.app(scope, receive, request.guarded_send)
        except (Exception, asyncio.CancelledError) as exc:
            if request.late_answer is None:  # not ours (e.g. the server cut the request): pass it on
                raise
            if isinstance(exc, asyncio.CancelledError):
                work.uncancel()  # our own cancel: the request is answered, not cut
            else:
                log.info("abandoned work ended with %s", exc.__class__.__name__)
        finally:
            timer.cancel()
        if request.late_answer is not None:
            await asyncio.shield(request.late_answer)  # returning before the 503 is out would look like no answer

    def _expire(self, request: _Request, work: asyncio.Task[None], scope: Scope, receive: Receive) -> None:
        if request.started:
            return  # already streaming its answer: let it finish
        log.warning("%s %s: no answer within %g s; answered 503", scope["method"], scope["path"], self.seconds)
        message = f"the database did not answer within {self.seconds:g} s; retry shortly"
        answer = error_response(503, "database_timeout", message, headers={"Retry-After": "5"})
        request.late_answer = asyncio.get_running_loop().create_task(answer(scope, receive, request.send))
        request.late_answer.add_done_callback(retrieve)
        work.cancel()

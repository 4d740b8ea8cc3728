"""The service plus one no-op route with the same request model, auth and handler (`web/direct.py`) as
`POST /api/events/`: the HTTP ceiling."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response, status

from studytrack.events.models import EventCreate
from studytrack.web.app import create_app
from studytrack.web.auth import principal, token_scope
from studytrack.web.direct import served_directly
from studytrack.web.flat import apply_marks


def create_bench_app() -> FastAPI:
    app = create_app()

    @app.post("/bench/noop", status_code=status.HTTP_201_CREATED, response_model=EventCreate)
    @token_scope("ingest")
    @served_directly(EventCreate)
    async def noop(event: EventCreate, request: Request, response: Response) -> EventCreate:
        principal(request)
        return event  # parsed, validated and authorised like POST /api/events/, but nothing is written

    apply_marks(app.router.routes[-1], noop)

    # Tried first, as POST /api/events/ is among the first: routes are matched in order on every request.
    app.router.routes.insert(0, app.router.routes.pop())
    return app

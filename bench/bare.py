"""The real ceiling: a bare FastAPI app with the request model of `POST /api/events/` (`tag`, `minutes`).

No middleware, no auth, no database; served by the same gunicorn settings and Uvicorn workers as the service,
access log included (to stdout, discarded). Every HTTP figure of `bench/run.py` is also printed as a ratio of
this one.
"""

from __future__ import annotations

from fastapi import FastAPI, status
from pydantic import BaseModel

app = FastAPI()


class Session(BaseModel):
    tag: str
    minutes: int


@app.post("/bench/bare", status_code=status.HTTP_201_CREATED)
async def bare(session: Session) -> Session:
    return session


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}  # for the benchmark's start-up wait

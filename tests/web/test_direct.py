"""Routes served directly (`web/direct.py`): the same answers as FastAPI's own handler, without it.

A tiny app declares one endpoint twice, once served by FastAPI and once directly, and both are asked the same.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from fastapi import FastAPI, Request, Response, status
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from starlette.types import Message

from studytrack.web.direct import served_directly
from studytrack.web.errors import install_error_handlers
from studytrack.web.flat import FlatRouter, add_routes


class Reading(BaseModel):
    sensor: str = Field(min_length=1)
    value: int = Field(ge=0)


def _answer(reading: Reading, response: Response) -> Reading:
    if reading.sensor == "again":
        response.status_code = status.HTTP_200_OK
    return reading


router = FlatRouter()


@router.post("/fastapi", status_code=status.HTTP_201_CREATED, response_model=Reading)
async def by_fastapi(reading: Reading, request: Request, response: Response) -> Reading:
    return _answer(reading, response)


@router.post("/direct", status_code=status.HTTP_201_CREATED, response_model=Reading)
@served_directly(Reading)
async def directly(reading: Reading, request: Request, response: Response) -> Reading:
    return _answer(reading, response)


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    add_routes(app, [router])
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app())


@pytest.mark.parametrize(
    "body",
    [
        b'{"sensor": "s1", "value": 3}',
        b'{"sensor": "again", "value": 3}',
        b'{"sensor": "", "value": -1}',
        b'{"sensor": "s1"}',
        b'{"sensor": "s1", "value": "many"}',
        b"[1, 2]",
        b"null",
    ],
    ids=["valid", "status set by the endpoint", "two faults", "missing field", "wrong type", "array", "null"],
)
def test_a_route_served_directly_answers_as_fastapi_s_own_handler(client: TestClient, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    ours, theirs = (
        client.post("/direct", content=body, headers=headers),
        client.post("/fastapi", content=body, headers=headers),
    )
    assert ours.status_code == theirs.status_code
    assert ours.json() == theirs.json()
    assert ours.headers["content-type"] == theirs.headers["content-type"]


def test_a_route_served_directly_keeps_its_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert paths["/direct"]["post"]["requestBody"] == paths["/fastapi"]["post"]["requestBody"]
    assert paths["/direct"]["post"]["responses"].keys() == paths["/fastapi"]["post"]["responses"].keys()


def test_a_caller_that_leaves_before_its_body_arrives_is_answered_400() -> None:
    app, sent = _app(), []
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/direct", "raw_path": b"/direct", "query_string": b"", "root_path": "", "headers": [],
        "server": ("testserver", 80), "client": ("testclient", 50000),
    }  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 400

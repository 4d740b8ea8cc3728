"""Request size limits: bodies over MAX_BODY_BYTES (MAX_BATCH_BYTES for batches) are a 413, long URLs a 414.

In the app with small limits, as a pure ASGI middleware (how much it reads before refusing), and on a real
gunicorn with the default limits (Content-Length, chunked uploads, an 8 KiB query string).
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from studytrack.config import Settings, SettingsError, load_settings
from studytrack.database.migrate import run_migrations
from studytrack.web.app import create_app
from studytrack.web.frame import RequestFrame
from studytrack.web.limits import MAX_URL_BYTES, RequestLimits
from studytrack.web.metrics import RequestMetrics
from tests.databases import Database, count_events, create_database
from tests.faults.harness import LOOPBACK, create_admin_token, gunicorn

BODY_LIMIT = 1024
BATCH_LIMIT = 4096
ERROR_SHAPE = {"status", "code", "message", "details"}


@pytest.fixture(scope="module")
def limited(server_url: str, settings: Settings) -> Iterator[tuple[TestClient, Database]]:
    """The app on a fresh database, with a 1 KiB body limit and a 4 KiB batch limit."""
    url = create_database(server_url, "limits")
    small = dataclasses.replace(
        settings,
        timescaledb="off",
        max_body_bytes=BODY_LIMIT,
        max_batch_bytes=BATCH_LIMIT,
        cors_origins=("https://a.example",),
    )
    run_migrations(url, small)
    with TestClient(create_app(small, database_url=url)) as client:
        db = Database(client)
        client.headers["Authorization"] = f"Bearer {db.create_token('limits-admin', ['admin'])}"
        yield client, db


@pytest.fixture
def client(limited: tuple[TestClient, Database]) -> TestClient:
    limited[1].execute("TRUNCATE events, event_ids")  # the ids table names each stored event
    return limited[0]


@pytest.fixture
def db(limited: tuple[TestClient, Database]) -> Database:
    return limited[1]


def event(note_length: int = 0) -> dict[str, Any]:
    return {"tag": "cka", "minutes": 25, "time": "2025-01-06T08:00:00Z", "note": "n" * note_length or None}


def chunks(body: bytes, size: int = 256) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends it chunked, the app gets it in pieces."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def assert_refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_SHAPE
    assert (body["status"], body["code"]) == (status, code)


def test_a_body_just_under_the_limit_is_served(client: TestClient, db: Database) -> None:
    body = json.dumps(event(note_length=900)).encode()
    assert len(body) < BODY_LIMIT
    assert client.post("/api/events/", content=body, headers={"content-type": "application/json"}).status_code == 201
    assert count_events(db) == 1


def test_a_body_over_the_limit_is_a_413_by_its_content_length(client: TestClient, db: Database) -> None:
    body = json.dumps(event(note_length=1000) | {"source": "x" * 100}).encode()
    assert len(body) > BODY_LIMIT
    response = client.post("/api/events/", content=body, headers={"content-type": "application/json"})
    assert_refused(response, 413, "payload_too_large")
    assert str(BODY_LIMIT) in response.json()["message"]
    assert count_events(db) == 0


def test_a_chunked_body_over_the_limit_is_a_413_too(client: TestClient, db: Database) -> None:
    body = json.dumps([event()] * 40).encode()
    response = client.post("/api/events/", content=chunks(body), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_refused(response, 413, "payload_too_large")
    assert count_events(db) == 0


def test_the_drop_in_sessions_route_has_the_same_limit(client: TestClient, db: Database) -> None:
    body = json.dumps({"tag": "cka", "minutes": 5, "padding": "x" * BODY_LIMIT}).encode()
    for content in (body, chunks(body)):
        response = client.post("/sessions", content=content, headers={"content-type": "application/json"})
        assert_refused(response, 413, "payload_too_large")
    assert count_events(db) == 0


def test_batches_have_their_own_larger_limit(client: TestClient, db: Database) -> None:
    fits = json.dumps([event() | {"time": f"2025-01-06T08:{i:02d}:00Z"} for i in range(30)]).encode()
    assert BODY_LIMIT < len(fits) < BATCH_LIMIT
    assert client.post("/api/events/batch", content=chunks(fits)).json()["inserted"] == 30
    too_big = json.dumps([event()] * 100).encode()
    assert len(too_big) > BATCH_LIMIT
    for content in (too_big, chunks(too_big)):
        response = client.post("/api/events/batch", content=content, headers={"content-type": "application/json"})
        assert_refused(response, 413, "payload_too_large")
    assert count_events(db) == 30


def test_a_413_carries_cors_headers_so_a_browser_can_read_it(client: TestClient) -> None:
    body = json.dumps(event(note_length=1000) | {"source": "x" * 100}).encode()
    response = client.post("/api/events/", content=body, headers={"origin": "https://a.example"})
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == "https://a.example"


def test_a_url_over_the_limit_is_a_414(client: TestClient) -> None:
    response = client.get("/api/events/", params={"tags": "x" * 8192})
    assert_refused(response, 414, "uri_too_long")
    many_tags = [f"tag-{i:03d}" for i in range(300)]  # 300 tags: a long but fair query, under the limit
    assert client.get("/api/sessions/", params={"tags": many_tags}).status_code == 200


# ---- the middleware alone ---------------------------------------------------------------------------


def run_asgi(app: Any, scope: dict[str, Any], receive: Receive) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(scope, receive, send)

    anyio.run(main)
    return sent


def http_scope(path: str = "/api/events/", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers or [],
    }


def framed(app: Any) -> RequestFrame:
    limits = RequestLimits(max_body_bytes=1000, max_batch_bytes=5000)
    return RequestFrame(app, limits=limits, deadline_seconds=30, metrics=RequestMetrics())


async def read_all(scope: Scope, receive: Receive, send: Send) -> None:
    """An app that reads its whole body, then answers 200."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_the_middleware_stops_reading_at_the_first_chunk_past_the_limit() -> None:
    pulled = 0

    async def endless() -> Message:  # a client that never stops sending
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 100, "more_body": True}

    middleware = framed(read_all)
    sent = run_asgi(middleware, http_scope(), endless)
    assert pulled == 11  # 1,100 bytes: one chunk past the limit, never more
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "payload_too_large"

    pulled = 0
    assert run_asgi(middleware, http_scope("/api/events/batch"), endless)[0]["status"] == 413
    assert pulled == 51


def test_a_declared_length_over_the_limit_is_refused_without_reading_or_calling_the_app() -> None:
    async def never(*args: Any) -> Any:
        raise AssertionError("must not be called")

    middleware = framed(never)
    sent = run_asgi(middleware, http_scope(headers=[(b"content-length", b"1001")]), never)
    assert sent[0]["status"] == 413


def test_a_declared_length_of_thousands_of_digits_is_a_413_not_a_500() -> None:
    async def never(*args: Any) -> Any:
        raise AssertionError("must not be called")

    sent = run_asgi(framed(never), http_scope(headers=[(b"content-length", b"9" * 5000)]), never)
    assert sent[0]["status"] == 413


def test_bodies_within_the_limit_pass_untouched() -> None:
    messages = iter(
        [
            {"type": "http.request", "body": b"x" * 500, "more_body": True},
            {"type": "http.request", "body": b"x" * 500, "more_body": False},
        ]
    )

    async def receive() -> Message:
        return next(messages)

    middleware = framed(read_all)
    sent = run_asgi(middleware, http_scope(headers=[(b"content-length", b"1000")]), receive)
    assert sent[0]["status"] == 200


def test_max_body_bytes_is_a_setting_with_a_64_kib_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAX_BODY_BYTES", raising=False)
    assert load_settings(tmp_path / ".env").max_body_bytes == 64 * 1024
    monkeypatch.setenv("MAX_BODY_BYTES", "2048")
    assert load_settings(tmp_path / ".env").max_body_bytes == 2048
    monkeypatch.setenv("MAX_BODY_BYTES", "0")
    with pytest.raises(SettingsError, match="MAX_BODY_BYTES"):
        load_settings(tmp_path / ".env")


# ---- a real server ----------------------------------------------------------------------------------


def raw_request(port: int, request: bytes, then: Sequence[bytes] = ()) -> tuple[int, dict[str, Any]]:
    """Send bytes on a socket (more chunks while the server reads them), return the status and JSON body."""
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(request)
        for chunk in then:
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline().strip()) != b"":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, json.loads(reader.read(length))


def test_a_real_server_refuses_large_bodies_and_long_urls(server_url: str, settings: Settings, tmp_path: Path) -> None:
    url = create_database(server_url, "limits_live")
    run_migrations(url, dataclasses.replace(settings, timescaledb="off"))
    token = create_admin_token(url, "limits-live", tmp_path)
    head = f"Host: {LOOPBACK}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    with gunicorn(url, workers=1, workdir=tmp_path) as server:
        # Content-Length of 1 GiB and no body at all: refused at once, nothing read.
        request = f"POST /api/events/ HTTP/1.1\r\n{head}Content-Length: {2**30}\r\n\r\n".encode()
        status, body = raw_request(server.port, request)
        assert (status, body["code"]) == (413, "payload_too_large")
        assert "65536" in body["message"]

        # Chunked, 100 KiB in 1 KiB chunks: refused once past 64 KiB.
        chunk = b"400\r\n" + b" " * 1024 + b"\r\n"
        request = f"POST /sessions HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode()
        status, body = raw_request(server.port, request, [chunk] * 100 + [b"0\r\n\r\n"])
        assert (status, body["code"]) == (413, "payload_too_large")

        # An 8 KiB query string: uvicorn would pass it on; the middleware refuses it in the error shape.
        request = f"GET /api/events/?tags={'a' * 8192} HTTP/1.1\r\n{head}\r\n".encode()
        status, body = raw_request(server.port, request)
        assert (status, body["code"]) == (414, "uri_too_long")
        assert str(MAX_URL_BYTES) in body["message"]

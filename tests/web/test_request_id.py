"""Request ids (X-Request-ID) and structured logs: the id on every line of a request, JSON lines, no secrets."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from studytrack.config import Settings
from studytrack.logs import (
    ACCESS_FLUSH_SECONDS,
    MAX_PENDING_LINES,
    BatchedStreamHandler,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    redact,
    request_id,
)
from studytrack.web.app import create_app
from studytrack.web.requestid import new_request_id, with_request_id
from tests.live import LiveServer, fresh_database, gunicorn

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens
HEX32 = re.compile(r"[0-9a-f]{32}")


def test_an_answer_that_names_its_own_request_id_carries_ours_once() -> None:
    headers = [(b"content-type", b"text/plain"), (b"x-request-id", b"the-app-s"), (b"x-request-id", b"again")]
    for given in (headers, tuple(headers), iter(headers)):
        assert with_request_id(given, b"ours") == [(b"content-type", b"text/plain"), (b"x-request-id", b"ours")]
    assert with_request_id((), b"ours") == [(b"x-request-id", b"ours")]


def test_every_response_carries_a_new_request_id(client: TestClient) -> None:
    first, second = client.get("/api/stats/"), client.get("/no/such/route")
    assert first.status_code == 200
    assert second.status_code == 404
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(HEX32.fullmatch(rid) and uuid.UUID(rid).version == 4 for rid in ids)
    assert ids[0] != ids[1]


def test_a_forked_worker_makes_other_request_ids_than_its_parent() -> None:
    read, write = os.pipe()
    if (pid := os.fork()) == 0:  # as gunicorn starts a worker
        os.write(write, new_request_id().encode())
        os._exit(0)
    parent = new_request_id()
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert HEX32.fullmatch(child)
    assert uuid.UUID(child).version == 4
    assert child != parent


def test_a_sane_incoming_request_id_is_kept(client: TestClient) -> None:
    for rid in ("abc-123", "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f", "x" * 128):
        response = client.get("/api/stats/", headers={"X-Request-ID": rid})
        assert response.status_code == 200
        assert response.headers["x-request-id"] == rid


@pytest.mark.parametrize("bad", ["", "has space", "x" * 129, "tab\there", "caf\u00e9"])
def test_an_insane_incoming_request_id_is_replaced(client: TestClient, bad: str) -> None:
    response = client.get("/api/stats/", headers={"X-Request-ID": bad.encode()})
    assert response.status_code == 200
    assert HEX32.fullmatch(response.headers["x-request-id"])


def test_error_answers_carry_the_request_id(client: TestClient) -> None:
    bad = client.post("/api/events/", json={"tag": "cka", "minutes": 0}, headers={"X-Request-ID": "req-422"})
    assert bad.status_code == 422
    assert bad.headers["x-request-id"] == "req-422"
    unauthorized = client.get("/api/stats/", headers={"Authorization": "Bearer nope", "X-Request-ID": "req-401"})
    assert unauthorized.status_code == 401
    assert unauthorized.headers["x-request-id"] == "req-401"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A root handler as `configure_logging` installs it (filter + text format), writing to a buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(TextFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_log_lines_written_while_handling_a_request_carry_its_id(settings: Settings, captured: io.StringIO) -> None:
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0, auth_disabled=True)
    with TestClient(create_app(fast, database_url=UNREACHABLE)) as client:
        response = client.get("/healthz", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 503
    assert response.headers["x-request-id"] == "trace-me-1"
    lines = [line for line in captured.getvalue().splitlines() if "health check" in line]
    assert len(lines) == 1
    assert re.fullmatch(r"WARNING studytrack.web.health: health check: .* request_id=trace-me-1", lines[0])
    outside = [line for line in captured.getvalue().splitlines() if "database not reachable at start-up" in line]
    assert outside
    assert all("request_id=" not in line for line in outside)  # start-up is no request


def _record(message: str, *args: object, name: str = "studytrack.test") -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, message, args, None)
    RequestIdFilter().filter(record)
    return record


def test_the_json_format_is_one_object_per_line_with_the_request_id() -> None:
    reset = request_id.set("rid-7")
    try:
        record = _record("stored %d sessions", 3)
    finally:
        request_id.reset(reset)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "stored 3 sessions"
    assert (entry["level"], entry["logger"], entry["request_id"]) == ("INFO", "studytrack.test", "rid-7")
    assert entry["time"].endswith("+00:00")
    assert json.loads(JsonFormatter().format(_record("outside")))["request_id"] is None

    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]


def test_token_values_are_redacted_in_both_formats() -> None:
    assert redact("GET /badge/cka.svg?token=s3cr3t&style=flat") == "GET /badge/cka.svg?token=***&style=flat"
    assert redact("/dashboard?access_token=abc.def-ghi") == "/dashboard?access_token=***"
    assert redact("/api/events/?tags=cka") == "/api/events/?tags=cka"
    access = _record(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/badge/cka.svg?token=s3cr3t",
        "1.1",
        200,
        name="uvicorn.access",
    )
    text = TextFormatter("%(message)s").format(access)
    assert text == '127.0.0.1:5000 - "GET /badge/cka.svg?token=*** HTTP/1.1" 200'
    entry = json.loads(JsonFormatter().format(access))
    assert "s3cr3t" not in json.dumps(entry)
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/badge/cka.svg?token=***", 200)


def test_text_lines_redact_secrets_in_the_message_and_the_traceback_not_the_request_id() -> None:
    reset = request_id.set("rid=9")
    try:
        try:
            raise ValueError("fetching /api/badge.svg?token=s3cr3t")
        except ValueError:
            exc_info = sys.exc_info()
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "GET %s", ("/d?password=hunter2",), exc_info)
        RequestIdFilter().filter(failed)
    finally:
        request_id.reset(reset)
    text = TextFormatter("%(levelname)s %(message)s").format(failed)
    assert text.splitlines()[0] == "ERROR GET /d?password=*** request_id=rid=9"
    assert "ValueError: fetching /api/badge.svg?token=***" in text
    assert "s3cr3t" not in text
    assert "hunter2" not in text


def test_configure_logging_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")


class _Writes(io.StringIO):
    """A stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_access_lines_are_written_together_within_a_fraction_of_a_second() -> None:
    stream = _Writes()
    handler = BatchedStreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for number in range(3):
        handler.handle(logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, f"line {number}", None, None))
    assert stream.getvalue() == ""  # waiting for the flusher
    time.sleep(3 * ACCESS_FLUSH_SECONDS)
    assert stream.getvalue() == "line 0\nline 1\nline 2\n"
    assert stream.writes == 1
    assert [t.name for t in threading.enumerate()].count("access-log-flush") >= 1


def test_a_burst_of_access_lines_is_written_without_waiting() -> None:
    stream = _Writes()
    handler = BatchedStreamHandler(stream)
    for _ in range(MAX_PENDING_LINES):
        handler.handle(logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "x", None, None))
    assert stream.getvalue().count("x\n") == MAX_PENDING_LINES
    handler.close()


@pytest.fixture(scope="module")
def json_server(server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    url = fresh_database(server_url, settings, "studytrack_logs")
    with gunicorn(url, tmp_path_factory.mktemp("logs") / "gunicorn.log", LOG_FORMAT="json") as server:
        yield server


def test_gunicorn_logs_json_lines_with_request_ids_and_no_tokens(json_server: LiveServer) -> None:
    secret = "s3cret-value-123"
    response = httpx.get(
        f"{json_server.url}/api/stats/?token={secret}",
        headers={"X-Request-ID": "json-req-1", "Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.headers["x-request-id"] == "json-req-1"
    deadline = time.monotonic() + 10 * ACCESS_FLUSH_SECONDS  # access lines are written in batches
    while True:
        lines = [line for line in json_server.output().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines]  # every line is JSON, gunicorn's own included
        access = [e for e in entries if e["logger"] == "uvicorn.access" and e.get("request_id") == "json-req-1"]
        if access or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert secret not in json_server.output()
    assert len(access) == 1
    assert access[0]["path"] == "/api/stats/?token=***"
    assert access[0]["status"] == 401
    assert any(e["logger"] == "gunicorn.error" and "Booting worker" in e["message"] for e in entries)


def test_text_access_lines_end_with_the_request_id(server_url: str, settings: Settings, tmp_path: Path) -> None:
    url = fresh_database(server_url, settings, "studytrack_textlogs")
    with gunicorn(url, tmp_path / "gunicorn.log") as server:
        httpx.get(f"{server.url}/healthz?token=hidden-42", headers={"X-Request-ID": "text-req-1"}, timeout=10)
    output = server.output()
    assert '"GET /healthz?token=*** HTTP/1.1" 200 request_id=text-req-1' in output
    assert "hidden-42" not in output
    assert re.search(r"\[\d+\] \[INFO\] Application startup complete", output)  # gunicorn's format is kept


@pytest.mark.parametrize(
    "line",
    [
        "GET /api/badge.svg?%74oken=SECRET HTTP/1.1",
        "GET /api/badge.svg?TOKEN=SECRET&tags=cka HTTP/1.1",
        "GET /api/badge.svg?tags=cka&to%6Ben=SECRET HTTP/1.1",
        "GET /dashboard?access%5Ftoken=SECRET HTTP/1.1",
        "connecting to postgresql://db/study?password=SECRET&sslmode=require",
    ],
)
def test_secrets_are_redacted_by_their_decoded_parameter_name(line: str) -> None:
    redacted = redact(line)
    assert "SECRET" not in redacted
    assert "***" in redacted
    assert redact("GET /api/events/?tags=cka&tz=UTC HTTP/1.1") == "GET /api/events/?tags=cka&tz=UTC HTTP/1.1"

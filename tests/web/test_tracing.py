"""OpenTelemetry tracing when OTEL_EXPORTER_OTLP_ENDPOINT is set: spans reach an OTLP/HTTP collector."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from studytrack.config import Settings
from studytrack.web.app import create_app

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # discard port: nothing listens


class _Collector(BaseHTTPRequestHandler):
    """Records each OTLP export (path, body) and answers 200 with an empty ExportTraceServiceResponse."""

    received: list[tuple[str, bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def _spans(received: list[tuple[str, bytes]]) -> list[Any]:
    spans = []
    for _, body in received:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                spans += list(scope_spans.spans)
    return spans


def test_without_an_endpoint_nothing_is_instrumented(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(settings, database_url=UNREACHABLE)
    assert not hasattr(app.state, "tracer_provider")


def test_request_spans_reach_the_collector_with_the_route_and_no_token(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, collector: tuple[str, list[tuple[str, bytes]]]
) -> None:
    endpoint, received = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "studytrack-test")
    fast = dataclasses.replace(settings, db_timeout_seconds=1.0, auth_disabled=True)
    app = create_app(fast, database_url=UNREACHABLE)
    with TestClient(app) as client:
        response = client.get("/api/events/6f1c1d9e-8a9e-4a55-9f7e-0a3b1c2d3e4f/?token=span-secret")
        assert response.status_code == 503
        assert client.get("/healthz").status_code == 503  # not traced
        assert client.get("/metrics").status_code == 200  # not traced
    assert app.state.tracer_provider.force_flush(10_000)

    assert received
    assert {path for path, _ in received} == {"/v1/traces"}
    spans = _spans(received)
    assert [span.name for span in spans] == ["GET /api/events/{event_id}/"]
    attributes = {item.key: item.value.string_value or item.value.int_value for item in spans[0].attributes}
    assert attributes["http.route"] == "/api/events/{event_id}/"
    assert attributes["http.status_code"] == 503
    assert "span-secret" not in repr(attributes)
    assert all(b"span-secret" not in body for _, body in received)
    resource = ExportTraceServiceRequest.FromString(received[0][1]).resource_spans[0].resource
    service = {item.key: item.value.string_value for item in resource.attributes}
    assert service["service.name"] == "studytrack-test"

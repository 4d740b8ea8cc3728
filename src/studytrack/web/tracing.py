"""Optional OpenTelemetry tracing: one span per request, exported over OTLP/HTTP.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set in the
environment; only then is OpenTelemetry imported. The exporter reads the standard `OTEL_*` variables itself
(endpoint, headers, timeout; `OTEL_SERVICE_NAME`, default `studytrack`). `/healthz` and `/metrics` are not
traced (`OTEL_PYTHON_FASTAPI_EXCLUDED_URLS` overrides that). Spans carry the route template; `token=` values
are redacted from the URL attributes, and no headers are recorded.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI

from studytrack import __version__
from studytrack.logs import redact

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
DEFAULT_EXCLUDED_URLS = "/healthz,/metrics"
_URL_ATTRIBUTES = ("http.url", "url.full", "url.query")


def tracing_enabled() -> bool:
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def _redact_url_attributes(span: Any, scope: dict[str, Any]) -> None:
    if span is None or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, redact(value))


def instrument_app(app: FastAPI) -> None:
    """Trace every request of `app` when an OTLP endpoint is configured; otherwise do nothing."""
    if not tracing_enabled():
        return
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise RuntimeError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc.name}); "
            "install opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http and "
            "opentelemetry-instrumentation-fastapi, or unset it"
        ) from None

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "studytrack"), "service.version": __version__}
    )
    provider = TracerProvider(resource=resource)  # flushed at process exit
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        server_request_hook=_redact_url_attributes,
        excluded_urls=os.environ.get("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS),
        exclude_spans=["receive", "send"],
    )
    app.state.tracer_provider = provider

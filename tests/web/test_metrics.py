"""GET /metrics: requests by route template, latency, ingested sessions by outcome, the database pool."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from studytrack.config import Settings
from studytrack.web.metrics import LATENCY_BUCKETS, REPORT_SECONDS, RequestMetrics
from tests.live import fresh_database, gunicorn

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, method: str, route: str, status: int) -> float:
    return value(samples, "studytrack_http_requests_total", method=method, route=route, status=str(status))


def ingested(samples: Samples) -> dict[str, float]:
    return {
        outcome: value(samples, "studytrack_ingested_events_total", outcome=outcome)
        for outcome in ("inserted", "duplicate", "conflict")
    }


def test_metrics_are_prometheus_text_and_need_no_token(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "studytrack_http_requests",
        "studytrack_http_request_duration_seconds",
        "studytrack_ingested_events",
        "studytrack_db_pool_connections",
    } <= names


def test_requests_are_counted_by_route_template_not_raw_path(client: TestClient) -> None:
    missing = uuid.uuid4()
    before = scrape(client)
    assert client.get(f"/api/events/{missing}/").status_code == 404
    assert client.get(f"/api/events/{missing}").status_code == 404  # the other spelling: the same route
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/api/stats/").status_code == 200
    text = client.get("/metrics").text
    after = parse(text)

    route = "/api/events/{event_id}/"
    assert requests(after, "GET", route, 404) - requests(before, "GET", route, 404) == 2
    assert '/api/events/{event_id}"' not in text
    assert requests(after, "GET", "unmatched", 404) - requests(before, "GET", "unmatched", 404) == 1
    assert requests(after, "GET", "/api/stats/", 200) - requests(before, "GET", "/api/stats/", 200) == 1
    assert str(missing) not in text
    assert "/no/such/page" not in text

    count = "studytrack_http_request_duration_seconds_count"
    assert value(after, count, method="GET", route=route) - value(before, count, method="GET", route=route) == 2
    bucket = "studytrack_http_request_duration_seconds_bucket"
    assert value(after, bucket, method="GET", route=route, le="+Inf") >= 2


def test_unknown_methods_do_not_add_label_values(client: TestClient) -> None:
    before = scrape(client)
    assert client.request("BREW", "/api/stats/").status_code == 405
    after = scrape(client)
    assert requests(after, "other", "/api/stats/", 405) - requests(before, "other", "/api/stats/", 405) == 1
    assert not any(("method", "BREW") in labels for _, labels in after)


def test_ingested_sessions_are_counted_by_outcome_on_every_write_path(client: TestClient) -> None:
    event = {"id": str(uuid.uuid4()), "tag": "cka", "minutes": 25, "time": "2025-01-06T08:00:00Z"}
    before = ingested(scrape(client))

    assert client.post("/api/events/", json=event).status_code == 201
    assert client.post("/api/events/", json=event).status_code == 200  # the same session again
    assert client.post("/api/events/", json=event | {"minutes": 30}).status_code == 409
    batch = [
        {"tag": "ckad", "minutes": 50, "time": "2025-01-07T08:00:00Z"},
        event,
        event | {"tag": "terraform"},
    ]
    result = client.post("/api/events/batch", json=batch).json()
    assert (result["inserted"], result["duplicates"], result["conflicts"]) == (1, 1, 1)
    assert client.post("/sessions", json={"minutes": 15, "tag": "linux"}).status_code == 200  # the drop-in

    after = ingested(scrape(client))
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "inserted": 3,
        "duplicate": 2,
        "conflict": 2,
    }


def test_a_refused_batch_counts_nothing(client: TestClient) -> None:
    before = ingested(scrape(client))
    response = client.post("/api/events/batch", json=[{"tag": "cka", "minutes": 25}, {"tag": "cka", "minutes": 0}])
    assert response.status_code == 422
    assert ingested(scrape(client)) == before


def test_pool_gauges_are_read_when_scraped(client: TestClient, backend_settings: Settings) -> None:
    samples = scrape(client)
    size = value(samples, "studytrack_db_pool_connections")
    available = value(samples, "studytrack_db_pool_available_connections")
    assert value(samples, "studytrack_db_pool_max_connections") == backend_settings.db_pool_size
    assert 1 <= size <= backend_settings.db_pool_size
    assert 0 <= available <= size
    assert value(samples, "studytrack_db_pool_waiting_requests") == 0


def test_request_timings_reach_the_histogram_as_observations_would() -> None:
    """Each worker tallies its requests and adds them to prometheus_client in one go: the buckets, the sum and
    the counts are what calling `observe` for each request would have made them."""
    path = f"/tally/{uuid.uuid4()}"  # series of its own: the registry is the process's
    tallies, route = RequestMetrics(), SimpleNamespace(path=path)
    reference = Histogram("reference", "observed one by one", buckets=LATENCY_BUCKETS, registry=CollectorRegistry())
    for seconds in (0.0004, 0.005, 0.0051, 0.3, 0.3, 2.5, 12.0, 0.075):
        tallies.observe({"method": "GET", "route": route}, 200, seconds)
        reference.observe(seconds)
    labels = {"method": "GET", "route": path}

    def ours(suffix: str, **extra: str) -> float | None:
        return REGISTRY.get_sample_value(f"studytrack_http_request_duration_seconds{suffix}", labels | extra)

    assert ours("_count") == 0  # reported only when flushed
    tallies.flush()
    tallies.flush()  # a second flush adds nothing
    (family,) = reference.collect()
    samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
    assert len(samples) == len(LATENCY_BUCKETS) + 2  # every bucket, the count and the sum
    for sample in samples:
        assert ours(sample.name.removeprefix("reference"), **sample.labels) == sample.value, sample
    assert REGISTRY.get_sample_value("studytrack_http_requests_total", labels | {"status": "200"}) == 8


def test_several_gunicorn_workers_report_shared_totals(server_url: str, settings: Settings, tmp_path: Path) -> None:
    """Multiprocess mode: whichever worker answers /metrics, it reports every worker's requests (those of the
    other workers within a second: each adds its tallies once a second)."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"")  # a previous run's leftover: unreadable, must be cleared
    url = fresh_database(server_url, settings, "studytrack_metrics")
    with gunicorn(url, tmp_path / "gunicorn.log", workers=2, PROMETHEUS_MULTIPROC_DIR=str(directory)) as server:
        for _ in range(12):  # a new connection each time: the workers share them
            assert httpx.get(f"{server.url}/api/stats/", timeout=10).status_code == 401
        time.sleep(REPORT_SECONDS + 0.5)
        totals = set()
        for _ in range(6):
            response = httpx.get(f"{server.url}/metrics", timeout=10)
            assert response.status_code == 200, server.output()[-3000:]
            samples = parse(response.text)
            totals.add(requests(samples, "GET", "/api/stats/", 401))
            pool_max = value(samples, "studytrack_db_pool_max_connections")
            assert pool_max in (settings.db_pool_size, 2 * settings.db_pool_size)  # summed over live workers
        assert totals == {12}
        assert not (directory / "counter_1.db").exists()
        assert {path.name.split("_")[0] for path in directory.glob("*.db")} >= {"counter", "histogram"}

"""GET /api/events/ as CSV: `?format=csv` or `Accept: text/csv`, the same rows as the JSON answer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.databases import Database
from tests.helpers import Session, insert_sessions

HEADER = ["bucket", "tag", "minutes", "count", "avg_minutes"]
RANGE = {"start": "2025-01-06", "end": "2025-01-09"}


def csv_rows(response: Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="studytrack-buckets.csv"'
    return list(csv.reader(io.StringIO(response.text)))


def as_cells(item: dict[str, Any]) -> list[str]:
    return ["" if item[column] is None else str(item[column]) for column in HEADER]


@pytest.fixture
def sessions(db: Database) -> None:
    insert_sessions(
        db,
        [
            Session(datetime(2025, 1, 6, 8, 54, tzinfo=UTC), "cka", 25),
            Session(datetime(2025, 1, 6, 13, 50, tzinfo=UTC), "cka", 20),
            Session(datetime(2025, 1, 6, 14, 0, tzinfo=UTC), "ckad", 60),
            Session(datetime(2025, 1, 7, 23, 30, tzinfo=UTC), "cka", 30),  # the 8th in Berlin
        ],
    )


@pytest.mark.usefixtures("sessions")
def test_format_csv_has_the_json_rows_with_a_header(client: TestClient) -> None:
    params = {**RANGE, "tz": "Europe/Berlin"}
    items = client.get("/api/events/", params=params).json()["items"]
    rows = csv_rows(client.get("/api/events/", params={**params, "format": "csv"}))
    assert rows == [HEADER, *(as_cells(item) for item in items)]
    assert rows[1:] == [
        ["2025-01-06T00:00:00+01:00", "cka", "45", "2", "22.5"],
        ["2025-01-06T00:00:00+01:00", "ckad", "60", "1", "60.0"],
        ["2025-01-08T00:00:00+01:00", "cka", "30", "1", "30.0"],
    ]


@pytest.mark.usefixtures("sessions")
def test_lines_end_with_crlf_as_rfc_4180_says(client: TestClient) -> None:
    body = client.get("/api/events/", params={**RANGE, "format": "csv"}).text
    assert body.startswith("bucket,tag,minutes,count,avg_minutes\r\n2025-01-06T00:00:00Z,cka,45,2,22.5\r\n")


@pytest.mark.usefixtures("sessions")
def test_fill_rows_have_an_empty_average(client: TestClient) -> None:
    rows = csv_rows(client.get("/api/events/", params={**RANGE, "tags": "ckad", "fill": True, "format": "csv"}))
    assert rows[1:] == [
        ["2025-01-06T00:00:00Z", "ckad", "60", "1", "60.0"],
        ["2025-01-07T00:00:00Z", "ckad", "0", "0", ""],
        ["2025-01-08T00:00:00Z", "ckad", "0", "0", ""],
    ]


def test_no_sessions_is_just_the_header(client: TestClient, db: Database) -> None:
    assert csv_rows(client.get("/api/events/", params={**RANGE, "format": "csv"})) == [HEADER]


@pytest.mark.usefixtures("sessions")
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param("text/csv", "text/csv", id="csv"),
        pytest.param("text/csv, application/json;q=0.5", "text/csv", id="csv preferred"),
        pytest.param("text/*", "text/csv", id="any text"),
        pytest.param("application/json", "application/json", id="json"),
        pytest.param("text/csv;q=0.5, application/json", "application/json", id="json preferred"),
        pytest.param("text/csv, application/json", "application/json", id="tie is json"),
        pytest.param("*/*", "application/json", id="anything"),
        pytest.param("text/html,application/xhtml+xml,*/*;q=0.8", "application/json", id="browser"),
    ],
)
def test_accept_header_chooses_csv_only_when_preferred(client: TestClient, accept: str, expected: str) -> None:
    response = client.get("/api/events/", params=RANGE, headers={"Accept": accept})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(expected)


@pytest.mark.usefixtures("sessions")
def test_format_parameter_wins_over_accept(client: TestClient) -> None:
    response = client.get("/api/events/", params={**RANGE, "format": "json"}, headers={"Accept": "text/csv"})
    assert response.headers["content-type"] == "application/json"
    assert len(response.json()["items"]) == 3
    response = client.get("/api/events/", params={**RANGE, "format": "csv"}, headers={"Accept": "application/json"})
    assert len(csv_rows(response)) == 4


def test_a_tag_that_looks_like_a_formula_is_neutralized(client: TestClient, db: Database) -> None:
    day = datetime(2025, 1, 6, 12, tzinfo=UTC)
    insert_sessions(db, [Session(day, '=hyperlink("http://x")', 5), Session(day, "-cmd", 7), Session(day, "a=b", 9)])
    rows = csv_rows(client.get("/api/events/", params={**RANGE, "format": "csv"}))
    assert [row[1] for row in rows[1:]] == ["'-cmd", '\'=hyperlink("http://x")', "a=b"]


def test_errors_stay_json_in_our_shape(client: TestClient, db: Database) -> None:
    response = client.get("/api/events/", params={"format": "csv", "tz": "Mars/Olympus"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "tz"
    response = client.get("/api/events/", params={"format": "xml"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "format"


def test_openapi_documents_the_format_parameter_and_csv(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/events/"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert "accept" not in parameters
    assert parameters["format"]["schema"]["anyOf"][0]["enum"] == ["json", "csv"]
    assert operation["responses"]["200"]["content"]["text/csv"]["schema"] == {"type": "string"}

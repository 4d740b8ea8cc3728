"""Tags match case-insensitively (one tag per spelling family) and show the first spelling stored, everywhere."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.testclient import TestClient

from tests.databases import Database, count_events

RANGE = {"start": "2025-01-06T00:00:00Z", "end": "2025-01-07T00:00:00Z", "duration": "1 day"}


def post(client: TestClient, tag: str, minutes: int, hour: int, **fields: str) -> dict[str, Any]:
    response = client.post(
        "/api/events/", json={"tag": tag, "minutes": minutes, "time": f"2025-01-06T{hour:02}:00:00Z"} | fields
    )
    assert response.status_code == 201, response.text
    event: dict[str, Any] = response.json()
    return event


def test_every_spelling_of_a_tag_adds_up_in_one_family_shown_as_first_spelled(client: TestClient, db: Database) -> None:
    post(client, "Kubernetes", 25, 8)
    later = post(client, "kubernetes", 15, 9)
    post(client, " KUBERNETES ", 10, 10)
    post(client, "AWS SAA", 50, 11)

    assert later["tag"] == "kubernetes"  # the answer to a write echoes what was sent
    assert client.get(f"/api/events/{later['id']}/").json()["tag"] == "Kubernetes"
    stats = client.get("/api/stats/").json()
    assert stats["time_by_tag"] == {"AWS SAA": 50, "Kubernetes": 50}
    assert stats["sessions_by_tag"] == {"AWS SAA": 1, "Kubernetes": 3}
    items = client.get("/api/events/", params=RANGE).json()["items"]
    assert [(item["tag"], item["minutes"], item["count"]) for item in items] == [
        ("AWS SAA", 50, 1),
        ("Kubernetes", 50, 3),
    ]
    sessions = client.get("/api/sessions/").json()["items"]
    assert [session["tag"] for session in sessions] == ["AWS SAA", "Kubernetes", "Kubernetes", "Kubernetes"]
    assert {session["tag"] for session in client.get("/sessions").json()} == {"AWS SAA", "Kubernetes"}


def test_a_filter_in_any_spelling_finds_the_family(client: TestClient, db: Database) -> None:
    post(client, "CKA", 25, 8)
    post(client, "cka", 15, 9)
    for spelling in ("cka", "CKA", "Cka"):
        items = client.get("/api/events/", params=RANGE | {"tags": spelling}).json()["items"]
        assert [(item["tag"], item["minutes"]) for item in items] == [("CKA", 40)]
        assert client.get("/api/stats/", params={"tags": spelling}).json()["time_by_tag"] == {"CKA": 40}
        assert [s["tag"] for s in client.get("/sessions", params={"tag": spelling}).json()] == ["CKA", "CKA"]


def test_a_chart_that_lists_empty_buckets_shows_the_family_spelling(client: TestClient, db: Database) -> None:
    post(client, "GitHub Actions", 30, 8)
    params = RANGE | {"duration": "1 hour", "tags": "github actions", "fill": "true"}
    items = client.get("/api/events/", params=params).json()["items"]
    assert len(items) == 24
    assert {item["tag"] for item in items} == {"GitHub Actions"}
    csv = client.get("/api/events/", params=params | {"format": "csv"}).text
    assert csv.splitlines()[9].split(",")[1:3] == ["GitHub Actions", "30"]


def test_the_badge_label_shows_the_family_spelling(client: TestClient, db: Database) -> None:
    post(client, "AWS SAA", 50, 8)
    badge = client.get("/api/badge.svg", params={"tags": "aws saa", "duration": "1 week"})
    assert "AWS SAA" in "".join(ET.fromstring(badge.text).itertext())


def test_the_same_session_in_another_spelling_is_a_duplicate_not_a_second_session(
    client: TestClient, db: Database
) -> None:
    session = {"tag": "CKA", "minutes": 25, "time": "2025-01-06T08:00:00Z", "source": "timer"}
    assert client.post("/api/events/", json=session).status_code == 201
    retry = client.post("/api/events/", json=session | {"tag": "cka"})
    assert (retry.status_code, retry.json()["tag"]) == (200, "CKA")
    own_id = str(uuid.uuid4())
    assert client.post("/api/events/", json=session | {"id": own_id, "minutes": 5}).status_code == 201
    assert client.post("/api/events/", json=session | {"id": own_id, "minutes": 5, "tag": "Cka"}).status_code == 200
    batch = client.post("/api/events/batch", json=[session | {"tag": "cKa"}, session | {"tag": "CKA "}])
    assert (batch.json()["inserted"], batch.json()["duplicates"]) == (0, 2)
    assert count_events(db) == 2


def test_one_batch_with_several_spellings_of_a_new_tag_shows_its_first_everywhere(
    client: TestClient, db: Database
) -> None:
    events = [
        {"tag": spelling, "minutes": 10, "time": f"2025-01-06T0{hour}:00:00Z"}
        for hour, spelling in enumerate(["Terraform", "terraform", "TERRAFORM"])
    ]
    assert client.post("/api/events/batch", json=events).json()["inserted"] == 3
    assert {session["tag"] for session in client.get("/api/sessions/").json()["items"]} == {"Terraform"}
    assert client.get("/api/stats/").json()["time_by_tag"] == {"Terraform": 30}

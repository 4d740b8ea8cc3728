"""API tokens: nobody reads or writes without one; scopes and per-user binding decide the rest."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest
from cachetools import TTLCache
from fastapi.testclient import TestClient
from pydantic import ValidationError

from studytrack.auth.tokens import Principal
from studytrack.config import Settings
from studytrack.web.app import create_app
from studytrack.web.auth import TOKEN_CACHE_SECONDS, TOKEN_CACHE_SIZE, token_cache
from tests.databases import Database, count_events
from tests.helpers import Session, insert_sessions

EVENT = {"tag": "cka", "minutes": 25, "time": "2025-01-06T08:00:00Z"}
RANGE = {"start": "2025-01-01", "end": "2025-02-01"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("header", [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer st_nope_nope", "Bearer garbage"])
def test_a_missing_or_unknown_token_is_a_401_and_writes_nothing(
    client: TestClient, db: Database, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    client_headers = dict(client.headers)
    client.headers.pop("Authorization")
    try:
        response = client.post("/api/events/", json=EVENT, headers=headers)
        read = client.get("/api/events/", headers=headers)
    finally:
        client.headers.update(client_headers)
    assert (response.status_code, read.status_code) == (401, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] in ("missing_token", "invalid_token")
    assert count_events(db) == 0


def test_a_post_without_a_token_is_refused_before_its_body_is_judged(client: TestClient) -> None:
    for body in (EVENT, {"tag": "", "minutes": 0}, [1, 2]):
        response = client.post("/api/events/", json=body, headers={"Authorization": ""})
        assert (response.status_code, response.json()["code"]) == (401, "missing_token")
    unreadable = client.post(
        "/api/events/", content=b"{not json", headers={"Authorization": "", "content-type": "application/json"}
    )
    assert (unreadable.status_code, unreadable.json()["code"]) == (401, "missing_token")  # the body is not read


def test_the_token_also_works_as_the_password_of_basic_auth(client: TestClient, db: Database) -> None:
    token = db.create_token("tracker", ["ingest", "read"])  # `auth=` replaces the client's own bearer token
    assert client.post("/api/events/", json=EVENT, auth=("any-name", token)).status_code == 201
    assert client.get("/api/stats/", auth=("", token)).json()["total_sessions"] == 1
    for garbage in ("Basic !!!", "Basic " + "A" * 7, "Basic dG9rZW4="):  # not base64, truncated, no colon
        refused = client.get("/api/stats/", headers={"Authorization": garbage})
        assert (refused.status_code, refused.json()["code"]) == (401, "missing_token")


def test_health_and_docs_stay_open(client: TestClient) -> None:
    for path in ("/healthz", "/docs", "/openapi.json"):
        assert client.get(path, headers={"Authorization": ""}).status_code == 200


def test_scopes_decide_what_a_token_may_do(client: TestClient, db: Database) -> None:
    ingest = bearer(db.create_token("ingest-only", ["ingest"]))
    read = bearer(db.create_token("read-only", ["read"]))
    assert client.post("/api/events/", json=EVENT, headers=ingest).status_code == 201
    assert client.post("/api/events/batch", json=[EVENT], headers=read).status_code == 403
    forbidden = client.get("/api/stats/", headers=ingest)
    assert forbidden.status_code == 403
    assert forbidden.json()["code"] == "missing_scope"
    assert client.get("/api/stats/", headers=read).json()["total_sessions"] == 1


def test_a_user_bound_token_writes_and_reads_only_its_users_events(client: TestClient, db: Database) -> None:
    insert_sessions(db, [Session(datetime(2025, 1, 6, 9, tzinfo=UTC), "cka", 40, "bo")])
    ana = bearer(db.create_token("ana-app", ["ingest", "read"], user_id="ana"))

    stored = client.post("/api/events/", json=EVENT, headers=ana).json()
    assert stored["user_id"] == "ana"
    assert client.post("/api/events/", json=EVENT | {"user_id": "bo"}, headers=ana).status_code == 403
    assert client.post("/api/events/batch", json=[EVENT | {"user_id": "bo"}], headers=ana).status_code == 403

    assert [i["minutes"] for i in client.get("/api/events/", params=RANGE, headers=ana).json()["items"]] == [25]
    assert client.get("/api/events/", params=RANGE | {"user_id": "bo"}, headers=ana).status_code == 403
    assert client.get("/api/stats/", headers=ana).json()["total_time"] == 25
    assert [i["user_id"] for i in client.get("/api/sessions/", headers=ana).json()["items"]] == ["ana"]
    bos_event = client.get("/api/sessions/", params={"user_id": "bo"}).json()["items"][0]["id"]
    assert client.get(f"/api/events/{bos_event}/", headers=ana).status_code == 404
    assert client.get("/api/stats/").json()["total_time"] == 65  # the unbound admin sees everyone


def test_an_admin_deletes_a_mistaken_session_and_charts_follow(client: TestClient, db: Database) -> None:
    keep = client.post("/api/events/", json=EVENT).json()
    mistake = client.post("/api/events/", json=EVENT | {"minutes": 600, "time": "2025-01-06T09:00:00Z"}).json()
    ingest = bearer(db.create_token("ingest-only", ["ingest", "read"]))
    assert client.delete(f"/api/events/{mistake['id']}/", headers=ingest).status_code == 403

    assert client.delete(f"/api/events/{mistake['id']}/").status_code == 204
    assert client.delete(f"/api/events/{mistake['id']}/").status_code == 404
    items = client.get("/api/events/", params=RANGE).json()["items"]
    assert [(i["minutes"], i["count"]) for i in items] == [(keep["minutes"], 1)]


def test_a_revoked_token_stops_working_once_the_cache_forgets_it(client: TestClient, db: Database) -> None:
    check = client.app.state.token_check  # type: ignore[attr-defined]
    kept = check.cache
    check.cache = TTLCache(maxsize=TOKEN_CACHE_SIZE, ttl=0.3)  # TOKEN_CACHE_SECONDS, shortened
    try:
        token = bearer(db.create_token("soon-gone", ["read"]))
        assert client.get("/api/stats/", headers=token).status_code == 200
        db.execute("DELETE FROM api_tokens WHERE name = 'soon-gone'")
        assert client.get("/api/stats/", headers=token).status_code == 200  # still cached
        time.sleep(0.4)
        assert client.get("/api/stats/", headers=token).status_code == 401
    finally:
        check.cache = kept


def test_the_token_cache_never_holds_more_than_its_bound_and_forgets_after_its_ttl() -> None:
    cache = token_cache()
    principal = Principal(name="t", scopes=frozenset({"read"}))
    for number in range(TOKEN_CACHE_SIZE + 100):
        cache[number.to_bytes(32, "big")] = principal
    assert len(cache) == TOKEN_CACHE_SIZE
    assert cache.ttl == TOKEN_CACHE_SECONDS  # the revocation delay the README promises


def test_auth_disabled_opens_the_api_and_says_so_loudly(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    open_settings = dataclasses.replace(settings, auth_disabled=True)
    create_app(open_settings, database_url="postgresql://nowhere@127.0.0.1:9/x")
    assert "AUTH_DISABLED=true" in caplog.text


@pytest.mark.parametrize("user_id", ["", "  ", "a\nb"])
def test_a_token_is_never_stored_for_a_user_id_the_api_would_refuse(
    client: TestClient, db: Database, user_id: str
) -> None:
    with pytest.raises(ValidationError):
        db.create_token("bad-user", ["read"], user_id=user_id)
    assert db.execute("SELECT count(*) FROM api_tokens WHERE name = 'bad-user'") == [(0,)]

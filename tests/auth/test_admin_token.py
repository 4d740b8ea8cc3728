"""The first admin token without a shell: ADMIN_TOKEN, and the embedded default's local token file.

On real databases: each test gets a freshly migrated one on the test PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import secrets
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import AsyncConnection

from studytrack.auth.admin_token import ENV_ADMIN, apply_admin_token, ensure_local_admin_token
from studytrack.auth.tokens import Principal, create_token, put_token, verify_token
from studytrack.config import Settings, SettingsError
from studytrack.database.migrate import run_migrations
from tests.databases import create_database


def new_admin_token() -> str:
    return f"st_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


@pytest.fixture
def url(server_url: str, settings: Settings) -> str:
    database = create_database(server_url, "admin_token")
    run_migrations(database, settings)
    return database


def with_token(settings: Settings, token: str | None) -> Settings:
    return dataclasses.replace(settings, admin_token=token)


def verify(url: str, token: str) -> Principal | None:
    async def run() -> Principal | None:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await verify_token(conn, token)

    return asyncio.run(run())


def stored(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT name, scopes, user_id, secret_sha256, created_at FROM api_tokens ORDER BY name"
        ).fetchall()


def test_admin_token_is_stored_hashed_as_an_admin_token(url: str, settings: Settings) -> None:
    token = new_admin_token()
    apply_admin_token(url, with_token(settings, token))
    principal = verify(url, token)
    assert principal == Principal(name=ENV_ADMIN, scopes=frozenset({"admin"}))
    ((name, scopes, user_id, digest, _),) = stored(url)
    assert (name, scopes, user_id) == ("ADMIN_TOKEN", ["admin"], None)
    assert token.split("_", 2)[2].encode() not in bytes(digest)


def test_without_admin_token_nothing_is_stored(url: str, settings: Settings) -> None:
    apply_admin_token(url, with_token(settings, None))
    assert stored(url) == []


def test_restarts_with_the_same_admin_token_change_nothing(url: str, settings: Settings) -> None:
    token = new_admin_token()
    apply_admin_token(url, with_token(settings, token))
    first = stored(url)
    apply_admin_token(url, with_token(settings, token))
    assert stored(url) == first


def test_replicas_starting_at_once_store_the_admin_token_once(url: str, settings: Settings) -> None:
    token = new_admin_token()
    start = threading.Barrier(6)
    failures: list[BaseException] = []

    def replica() -> None:
        start.wait(timeout=10)
        try:
            apply_admin_token(url, with_token(settings, token))
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert len(stored(url)) == 1
    assert verify(url, token) is not None


def test_one_secret_stored_from_many_connections_at_once_leaves_one_row(url: str) -> None:
    async def race(token: str) -> list[str]:
        connections = [await AsyncConnection.connect(url, autocommit=True) for _ in range(8)]
        try:  # connected first, so the statements themselves meet
            return await asyncio.gather(
                *(put_token(conn, name=ENV_ADMIN, token=token, scopes=["admin"]) for conn in connections)
            )
        finally:
            for conn in connections:
                await conn.close()

    for _ in range(20):
        token = new_admin_token()
        outcomes = asyncio.run(race(token))
        assert outcomes.count("unchanged") == 7  # one "created" (then "replaced"), no unique violation
        assert len(stored(url)) == 1
        assert verify(url, token) is not None


def test_a_new_admin_token_value_replaces_the_old_one(url: str, settings: Settings) -> None:
    old, new = new_admin_token(), new_admin_token()
    apply_admin_token(url, with_token(settings, old))
    apply_admin_token(url, with_token(settings, new))
    assert verify(url, old) is None
    assert verify(url, new) is not None
    assert [row[0] for row in stored(url)] == ["ADMIN_TOKEN"]


def test_admin_token_takes_over_a_token_of_the_same_name_and_scope(url: str, settings: Settings) -> None:
    async def create() -> str:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await create_token(conn, name=ENV_ADMIN, scopes=["read"], user_id="ana")

    earlier = asyncio.run(create())
    token = new_admin_token()
    apply_admin_token(url, with_token(settings, token))
    assert verify(url, earlier) is None
    assert verify(url, token) == Principal(name=ENV_ADMIN, scopes=frozenset({"admin"}))


def test_an_admin_token_whose_key_id_another_token_holds_is_refused_by_name(url: str, settings: Settings) -> None:
    async def create() -> str:
        async with await AsyncConnection.connect(url, autocommit=True) as conn:
            return await create_token(conn, name="pomodoro", scopes=["ingest"])

    key_id = asyncio.run(create()).split("_")[1]
    token = f"st_{key_id}_{secrets.token_urlsafe(32)}"
    with pytest.raises(SettingsError, match="ADMIN_TOKEN") as raised:
        apply_admin_token(url, with_token(settings, token))
    assert key_id not in str(raised.value)
    assert [row[0] for row in stored(url)] == ["pomodoro"]


def test_admin_token_is_never_printed_or_logged(
    url: str, settings: Settings, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    token = new_admin_token()
    with caplog.at_level(logging.DEBUG):
        apply_admin_token(url, with_token(settings, token))
        apply_admin_token(url, with_token(settings, token))
    captured = capfd.readouterr()
    secret = token.split("_", 2)[2]
    assert "ADMIN_TOKEN" in caplog.text
    for text in (caplog.text, captured.out, captured.err):
        assert secret not in text
        assert token.split("_")[1] not in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_local_admin_token_goes_to_an_owner_only_file_and_not_to_a_redirected_stdout(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_local_admin_token(url, tmp_path)
    token = (tmp_path / "admin-token").read_text().strip()
    output = capsys.readouterr().out
    assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
    assert verify(url, token) == Principal(name="local-admin", scopes=frozenset({"admin"}))
    assert str(tmp_path / "admin-token") in output
    assert token not in output
    assert token.split("_", 2)[2] not in output


def test_the_local_admin_token_is_shown_once_on_a_terminal(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    ensure_local_admin_token(url, tmp_path)
    ensure_local_admin_token(url, tmp_path)  # a restart: the file exists, nothing is shown
    token = (tmp_path / "admin-token").read_text().strip()
    assert terminal.getvalue().count(token) == 1

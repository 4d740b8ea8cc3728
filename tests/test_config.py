"""Settings: one place, read from the environment and `.env`, failing fast with the key's name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from studytrack.config import SettingsError, load_settings, redact_url
from tests.environment import SERVICE_SETTINGS


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for key in SERVICE_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    return tmp_path / ".env"


@pytest.mark.parametrize(
    "url",
    ["postgres://u:p@db:5432/app", "postgresql://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"],
)
def test_database_url_accepts_the_three_schemes(clean_env: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    assert load_settings(clean_env).database_url == "postgresql://u:p@db:5432/app"


def test_postgres_parts_build_the_url_with_the_password_escaped(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "POSTGRES_HOST": "db",
        "POSTGRES_USER": "app",
        "POSTGRES_PASSWORD": "p@ss/word",
        "POSTGRES_DB": "study",
        "POSTGRES_PORT": "6543",
    }.items():
        monkeypatch.setenv(key, value)
    assert load_settings(clean_env).database_url == "postgresql://app:p%40ss%2Fword@db:6543/study"


def test_no_database_setting_means_the_embedded_database(clean_env: Path) -> None:
    settings = load_settings(clean_env)
    assert settings.database_url is None
    assert settings.uses_embedded_database


def test_dotenv_is_read_and_the_environment_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_env.write_text("PORT=9001\nLOG_LEVEL=debug\nCHUNK_TIME_INTERVAL_DAYS=1\n")
    monkeypatch.setenv("PORT", "9002")
    settings = load_settings(clean_env)
    assert (settings.port, settings.log_level, settings.chunk_time_interval) == (
        9002,
        "debug",
        timedelta(days=1),
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("WEB_CONCURRENCY", "-1"),
        ("LOG_LEVEL", "loud"),
        ("DATABASE_URL", "mysql://x"),
        ("TIMESCALEDB", "maybe"),
        ("MAX_BUCKETS", "0"),
        ("CORS_ORIGINS", "*,https://a"),
    ],
)
def test_a_bad_setting_fails_fast_naming_its_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=key):
        load_settings(clean_env)


def test_passwords_never_appear_in_a_logged_url() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/study") == "postgresql://app:***@db:5432/study"
    assert redact_url("postgresql://app@db/study") == "postgresql://app@db/study"


GOOD_ADMIN_TOKEN = "st_0123456789abcdef_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aBcDe"


def test_admin_token_is_unset_by_default_and_kept_when_well_formed(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(clean_env).admin_token is None
    monkeypatch.setenv("ADMIN_TOKEN", f"  {GOOD_ADMIN_TOKEN}\n")
    assert load_settings(clean_env).admin_token == GOOD_ADMIN_TOKEN


def test_admin_token_is_kept_out_of_the_settings_repr(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", GOOD_ADMIN_TOKEN)
    assert GOOD_ADMIN_TOKEN.split("_")[2] not in repr(load_settings(clean_env))


@pytest.mark.parametrize(
    "value",
    [
        "correct-horse-battery-staple-correct-horse-battery",  # not our token shape
        "st_0123456789abcdef_short",  # fewer than 43 characters of secret
        "st_0123456789abcdef_" + "ab" * 30,  # long enough, but two distinct characters
        "st_key!_" + GOOD_ADMIN_TOKEN.split("_", 2)[2],  # key id not alphanumeric
        "st_0123456789abcdef_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/aBcDe",  # not base64url
    ],
)
def test_a_weak_or_malformed_admin_token_fails_fast_without_echoing_it(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ADMIN_TOKEN", value)
    with pytest.raises(SettingsError, match="ADMIN_TOKEN") as raised:
        load_settings(clean_env)
    assert value not in str(raised.value)
    assert value.rsplit("_", 1)[-1] not in str(raised.value)


def test_a_password_in_the_database_urls_query_string_is_redacted() -> None:
    assert redact_url("postgresql://app@db/study?password=s3cret&sslmode=require") == (
        "postgresql://app@db/study?password=***&sslmode=require"
    )
    assert "s3cret" not in redact_url("postgresql://app:pw@db/study?pass%77ord=s3cret")


def test_replica_urls_are_unset_by_default_and_read_as_a_comma_separated_list(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(clean_env)
    assert (settings.database_replica_urls, settings.replica_max_lag_seconds) == ((), 5.0)
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgres://u:p@replica-a/app, postgresql+psycopg://u:p@replica-b/app")
    monkeypatch.setenv("REPLICA_MAX_LAG_SECONDS", "2.5")
    settings = load_settings(clean_env)
    assert settings.database_replica_urls == ("postgresql://u:p@replica-a/app", "postgresql://u:p@replica-b/app")
    assert settings.replica_max_lag_seconds == 2.5


def test_replica_hosts_take_the_primarys_postgres_parts(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parts = {"POSTGRES_HOST": "db", "POSTGRES_USER": "app", "POSTGRES_PASSWORD": "p@ss", "POSTGRES_DB": "study"}
    for key, value in (parts | {"POSTGRES_REPLICA_HOST": "db-replica, db-replica-2"}).items():
        monkeypatch.setenv(key, value)
    assert load_settings(clean_env).database_replica_urls == (
        "postgresql://app:p%40ss@db-replica:5432/study",
        "postgresql://app:p%40ss@db-replica-2:5432/study",
    )
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://u:p@elsewhere/app")  # a URL wins
    assert load_settings(clean_env).database_replica_urls == ("postgresql://u:p@elsewhere/app",)


def test_a_multi_host_replica_url_stays_one_url(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://u@r1:5432,r2:5432/app?target_session_attrs=standby")
    assert load_settings(clean_env).database_replica_urls == (
        "postgresql://u@r1:5432,r2:5432/app?target_session_attrs=standby",
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DATABASE_REPLICA_URL", "mysql://replica/app"),
        ("DATABASE_REPLICA_URL", "postgresql://replica-a/app,mysql://replica-b/app"),
        ("REPLICA_MAX_LAG_SECONDS", "0"),
        ("REPLICA_MAX_LAG_SECONDS", "soon"),
    ],
)
def test_a_bad_replica_setting_fails_fast_naming_its_key(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=key):
        load_settings(clean_env)

"""All configuration, read once from the environment and `.env` (python-decouple).

Environment variables win over `.env`; a bad value fails fast with a message naming the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from decouple import Choices, Config, Csv, RepositoryEmpty, RepositoryEnv, UndefinedValueError

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
TIMESCALEDB_MODES = ("auto", "off", "required")
# An API token's shape (`st_<key id>_<secret>`) with a secret of at least 256 bits of base64url.
ADMIN_TOKEN_SHAPE = re.compile(r"st_[A-Za-z0-9]{8,32}_[A-Za-z0-9_-]{43,128}")
ADMIN_TOKEN_MIN_DISTINCT = 16  # distinct characters in the secret: refuses "aaaa..." and short cycles
# Split a URL list only before a scheme: a libpq multi-host URL (`postgresql://h1,h2/db`) has commas of its own.
_URL_LIST = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    studytrack_home: Path
    database_replica_urls: tuple[str, ...] = ()  # hot standbys that serve reads (docs/scaling.md)
    replica_max_lag_seconds: float = 5.0
    port: int = 8000
    web_concurrency: int = 2
    log_level: str = "info"
    log_format: str = "text"
    cors_origins: tuple[str, ...] = ()
    timescaledb: str = "auto"
    timescaledb_source: str | None = None  # `studytrack timescaledb install`: tarball path, URL or directory
    chunk_time_interval: timedelta = timedelta(days=56)
    compress_after: timedelta | None = timedelta(days=30)
    retention: timedelta | None = None
    max_buckets: int = 10_000
    max_chart_rows: int = 50_000
    max_chart_tags: int = 200
    max_batch_events: int = 10_000
    max_batch_bytes: int = 16 * 1024 * 1024
    max_body_bytes: int = 64 * 1024
    db_pool_size: int = 10
    db_timeout_seconds: float = 5.0
    auth_disabled: bool = False
    public_badges: bool = False
    admin_token: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


def _read(config: Config, key: str, default: object, cast: type) -> object:
    try:
        return config(key, default=default, cast=cast)
    except (ValueError, UndefinedValueError) as exc:
        raise SettingsError(f"setting {key} is invalid: {exc}") from None


def _positive(key: str, value: object) -> int:
    if not isinstance(value, int) or value < 1:
        raise SettingsError(f"setting {key} must be a positive integer, got {value!r}")
    return value


def normalize_database_url(url: str) -> str:
    """Accept postgres://, postgresql:// and postgresql+psycopg:// and return a libpq URL."""
    scheme, _, rest = url.partition("://")
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg") or not rest:
        raise SettingsError("setting DATABASE_URL must start with postgres://, postgresql:// or postgresql+psycopg://")
    return f"postgresql://{rest}"


def redact_url(url: str) -> str:
    """The URL with its password replaced, in the user part and in the query (`?password=`), safe to log."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if parts.query:
        pairs = [pair.partition("=") for pair in parts.query.split("&")]
        secret = ("password", "sslpassword")  # libpq's query-string spellings of a secret
        query = "&".join(f"{n}={'***' if unquote(n).lower() in secret else v}" if s else n for n, s, v in pairs)
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def _database_url(config: Config) -> str | None:
    url = config("DATABASE_URL", default="")
    if url:
        return normalize_database_url(str(url))
    host = config("POSTGRES_HOST", default="")
    if not host:
        return None  # no database configured: serve the embedded one
    return _postgres_url(config, str(host))


def _postgres_url(config: Config, host: str) -> str:
    """A URL from POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_PORT and POSTGRES_DB, to `host`."""
    user = quote(str(config("POSTGRES_USER", default="postgres")), safe="")
    password = quote(str(config("POSTGRES_PASSWORD", default="")), safe="")
    port = _positive("POSTGRES_PORT", _read(config, "POSTGRES_PORT", 5432, int))
    name = quote(str(config("POSTGRES_DB", default="postgres")), safe="")
    credentials = f"{user}:{password}" if password else user
    return f"postgresql://{credentials}@{host}:{port}/{name}"


def _replica_urls(config: Config) -> tuple[str, ...]:
    """DATABASE_REPLICA_URL: one or more comma-separated URLs, each in a scheme DATABASE_URL accepts; or, with
    POSTGRES_HOST, POSTGRES_REPLICA_HOST: one or more comma-separated hosts with POSTGRES_HOST's credentials."""
    urls = [url.strip() for url in _URL_LIST.split(str(config("DATABASE_REPLICA_URL", default="")))]
    from_parts = config("POSTGRES_HOST", default="") and not config("DATABASE_URL", default="")
    if not any(urls) and from_parts:  # the primary's URL is made from POSTGRES_*: the replicas' too
        hosts = str(config("POSTGRES_REPLICA_HOST", default="")).split(",")
        return tuple(_postgres_url(config, host.strip()) for host in hosts if host.strip())
    try:
        return tuple(normalize_database_url(url) for url in urls if url)
    except SettingsError:
        raise SettingsError(
            "setting DATABASE_REPLICA_URL must be comma-separated URLs starting with postgres://, postgresql:// "
            "or postgresql+psycopg://"
        ) from None


def _positive_seconds(config: Config, key: str, default: float) -> float:
    seconds = _read(config, key, default, float)
    if not isinstance(seconds, float) or not seconds > 0:
        raise SettingsError(f"setting {key} must be a positive number of seconds, got {seconds!r}")
    return seconds


def _chunk_interval(config: Config) -> timedelta:
    days = _read(config, "CHUNK_TIME_INTERVAL_DAYS", 56, int)
    return timedelta(days=_positive("CHUNK_TIME_INTERVAL_DAYS", days))


def _days_or_off(config: Config, key: str, default: int) -> timedelta | None:
    """A number of days; 0 turns the policy off."""
    days = _read(config, key, default, int)
    if not isinstance(days, int) or days < 0:
        raise SettingsError(f"setting {key} must be a whole number of days (0 = off), got {days!r}")
    return timedelta(days=days) if days else None


def _admin_token(config: Config) -> str | None:
    """ADMIN_TOKEN, checked for shape and entropy; the message never shows the value."""
    token = str(config("ADMIN_TOKEN", default="")).strip()
    if not token:
        return None
    secret = token.split("_", 2)[2] if ADMIN_TOKEN_SHAPE.fullmatch(token) else ""
    if len(set(secret)) < ADMIN_TOKEN_MIN_DISTINCT:
        raise SettingsError(
            "setting ADMIN_TOKEN must read st_<8-32 letters or digits>_<43-128 random characters of "
            "A-Z a-z 0-9 - _> (the value is not shown)"
        )
    return token


def load_settings(env_file: Path | None = None) -> Settings:
    """Read every setting; raise SettingsError naming the first bad key."""
    env_file = env_file or Path.cwd() / ".env"
    repository = RepositoryEnv(str(env_file)) if env_file.is_file() else RepositoryEmpty()
    config = Config(repository)

    log_level = str(config("LOG_LEVEL", default="info")).lower()
    if log_level not in LOG_LEVELS:
        raise SettingsError(f"setting LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    timescaledb = str(config("TIMESCALEDB", default="auto")).lower()
    if timescaledb not in TIMESCALEDB_MODES:
        raise SettingsError(f"setting TIMESCALEDB must be one of {', '.join(TIMESCALEDB_MODES)}")
    origins = tuple(str(origin) for origin in config("CORS_ORIGINS", default="", cast=Csv()))
    if "*" in origins and len(origins) > 1:
        raise SettingsError("setting CORS_ORIGINS: '*' cannot be combined with other origins")

    return Settings(
        database_url=_database_url(config),
        database_replica_urls=_replica_urls(config),
        replica_max_lag_seconds=_positive_seconds(config, "REPLICA_MAX_LAG_SECONDS", 5.0),
        studytrack_home=Path(str(config("STUDYTRACK_HOME", default=".studytrack"))).resolve(),
        port=_positive("PORT", _read(config, "PORT", 8000, int)),
        web_concurrency=_positive(
            "WEB_CONCURRENCY", _read(config, "WEB_CONCURRENCY", min(2 * (os.cpu_count() or 1), 8), int)
        ),
        log_level=log_level,
        log_format=str(_read(config, "LOG_FORMAT", "text", Choices(["text", "json"]))),
        cors_origins=origins,
        timescaledb=timescaledb,
        timescaledb_source=str(config("TIMESCALEDB_SOURCE", default="")) or None,
        chunk_time_interval=_chunk_interval(config),
        compress_after=_days_or_off(config, "COMPRESS_AFTER_DAYS", 30),
        retention=_days_or_off(config, "RETENTION_DAYS", 0),
        max_buckets=_positive("MAX_BUCKETS", _read(config, "MAX_BUCKETS", 10_000, int)),
        max_chart_rows=_positive("MAX_CHART_ROWS", _read(config, "MAX_CHART_ROWS", 50_000, int)),
        max_chart_tags=_positive("MAX_CHART_TAGS", _read(config, "MAX_CHART_TAGS", 200, int)),
        max_batch_events=_positive("MAX_BATCH_EVENTS", _read(config, "MAX_BATCH_EVENTS", 10_000, int)),
        max_batch_bytes=_positive("MAX_BATCH_BYTES", _read(config, "MAX_BATCH_BYTES", 16 * 1024 * 1024, int)),
        max_body_bytes=_positive("MAX_BODY_BYTES", _read(config, "MAX_BODY_BYTES", 64 * 1024, int)),
        db_pool_size=_positive("DB_POOL_SIZE", _read(config, "DB_POOL_SIZE", 10, int)),
        auth_disabled=bool(_read(config, "AUTH_DISABLED", False, bool)),
        public_badges=bool(_read(config, "PUBLIC_BADGES", False, bool)),
        admin_token=_admin_token(config),
        db_timeout_seconds=float(_read(config, "DB_TIMEOUT_SECONDS", 5.0, float)),  # type: ignore[arg-type]
    )


@lru_cache
def get_settings() -> Settings:
    return load_settings()

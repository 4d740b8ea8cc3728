"""docker-compose.yml and .env.compose: valid Compose, and the stack they describe is the intended one.

No Docker engine here: the file is checked against the Compose Specification's JSON schema
(vendored, see schemas/README.md) and then for what the schema cannot know.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from studytrack.config import TIMESCALEDB_MODES, load_settings
from tests.deploy.support import (
    COMPOSE_FILE,
    COMPOSE_OVERRIDE_EXAMPLE,
    ENV_COMPOSE,
    REPO,
    SCHEMAS,
    is_ignored,
    load_json,
    load_yaml,
    parse_dockerfile,
    parse_dockerignore,
    parse_env_file,
    script_default,
)

PLACEHOLDER_PASSWORD = "change-me"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def env_compose() -> dict[str, str]:
    return parse_env_file(ENV_COMPOSE)


def compose_validator() -> jsonschema.protocols.Validator:
    schema = load_json(SCHEMAS / "compose-spec.json")
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def schema_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def env_files(service: dict[str, Any]) -> list[str]:
    return [entry if isinstance(entry, str) else entry["path"] for entry in as_list(service.get("env_file", []))]


def seconds(duration: str) -> float:
    """A Compose duration such as 40s, 1m30s or 1500ms."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


# ---- schema ---------------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


def test_the_schema_check_rejects_what_compose_rejects() -> None:
    """Guard the guard: the vendored schema really is strict about misspelt and mistyped keys."""
    assert schema_errors({"services": {"api": {"imagee": "x"}}})
    assert schema_errors({"services": {"api": {"depends_on": {"db": {"condition": "healthy"}}}}})
    assert schema_errors({"services": {"api": {"develop": {"watch": [{"path": "src", "action": "copy"}]}}}})


def test_override_example_is_valid_compose_for_the_same_services(compose: dict[str, Any]) -> None:
    assert COMPOSE_OVERRIDE_EXAMPLE.exists(), "compose.override.example.yml is documented in the README"
    example = load_yaml(COMPOSE_OVERRIDE_EXAMPLE)
    assert schema_errors(example) == []
    assert set(example.get("services", {})) <= set(compose["services"])


# ---- the stack ------------------------------------------------------------------------------------


def test_project_is_named_and_runs_the_db_and_api_unless_a_profile_is_asked_for(compose: dict[str, Any]) -> None:
    assert compose["name"] == "studytrack"
    by_default = {name for name, service in compose["services"].items() if not service.get("profiles")}
    assert by_default == {"db", "api"}
    scale = {name for name, service in compose["services"].items() if service.get("profiles") == ["scale"]}
    assert scale == {"db-replica", "api-replica", "lb"}
    assert "version" not in compose  # obsolete in the Compose Specification


def test_db_is_a_pinned_timescaledb_image(compose: dict[str, Any]) -> None:
    image = compose["services"]["db"]["image"]
    match = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", image)
    assert match, f"db image must pin an exact TimescaleDB release and PostgreSQL major: {image}"
    assert int(match[4]) >= 15


def test_db_healthcheck_uses_pg_isready_over_tcp_with_the_configured_user(compose: dict[str, Any]) -> None:
    check = compose["services"]["db"]["healthcheck"]
    test = check["test"]
    command = test if isinstance(test, str) else " ".join(test[1:])
    assert "pg_isready" in command
    # $$ so that the container, not compose, expands the variables (from .env.compose).
    assert "$${POSTGRES_USER}" in command
    assert "$${POSTGRES_DB}" in command
    # TCP: during first-start initialisation the image runs a socket-only temporary server, which
    # must not count as ready.
    assert "-h 127.0.0.1" in command
    assert seconds(check["interval"]) <= 10
    assert check["retries"] >= 3


def test_db_data_lives_in_a_declared_named_volume(compose: dict[str, Any]) -> None:
    mounts = compose["services"]["db"]["volumes"]
    named = {}
    for mount in mounts:
        source, target = mount.split(":")[:2] if isinstance(mount, str) else (mount["source"], mount["target"])
        if not source.startswith((".", "/", "~")):
            named[target] = source
    assert "/var/lib/postgresql/data" in named, "the database files must be on a named volume"
    assert named["/var/lib/postgresql/data"] in (compose.get("volumes") or {})


def test_db_is_not_published_on_the_host(compose: dict[str, Any]) -> None:
    assert "ports" not in compose["services"]["db"]


def test_both_services_read_env_compose(compose: dict[str, Any]) -> None:
    for name in ("db", "api"):
        assert env_files(compose["services"][name]) == [".env.compose"], name


def test_api_is_built_from_the_dockerfile_and_waits_for_a_healthy_db(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    build = api["build"]
    assert (REPO / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == REPO / "Dockerfile"
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["restart"] == "unless-stopped"


def test_api_publishes_the_port_the_image_serves_on(compose: dict[str, Any], env_compose: dict[str, str]) -> None:
    api = compose["services"]["api"]
    assert api["ports"] == ["8000:8000"]
    container_port = api["ports"][0].rsplit(":", 1)[1]
    exposed = {p for i in parse_dockerfile().final.all("EXPOSE") for p in i.operands()}
    assert container_port == env_compose["PORT"]
    assert container_port in exposed


def test_api_gets_more_stop_time_than_the_graceful_shutdown_needs(compose: dict[str, Any]) -> None:
    grace = seconds(compose["services"]["api"].get("stop_grace_period", "10s"))
    assert grace > script_default("GRACEFUL_TIMEOUT")


def test_watch_syncs_the_code_where_the_image_runs_it_and_rebuilds_on_dependencies(
    compose: dict[str, Any],
) -> None:
    rules = compose["services"]["api"]["develop"]["watch"]
    syncs = {Path(r["path"]).as_posix(): r["target"] for r in rules if r["action"].startswith("sync")}
    rebuilds = {Path(r["path"]).as_posix() for r in rules if r["action"] == "rebuild"}
    assert syncs == {"src": "/app/src"}
    assert {"requirements.txt", "pyproject.toml"} <= rebuilds
    rules = parse_dockerignore()
    for path in [*syncs, *rebuilds]:
        assert (REPO / path).exists(), f"watched path {path} does not exist"
        # compose watch applies .dockerignore: an ignored path would never trigger
        assert not is_ignored(path, rules), f".dockerignore hides watched path {path}"
    # The sync target is where the Dockerfile puts the code, owned by the user that runs it
    # (compose copies as the container's user).
    final = parse_dockerfile().final
    copies = [c for c in final.all("COPY") if "from" not in c.flags() and c.operands()[0].rstrip("/") == "src"]
    assert [c.operands()[-1].rstrip("/") for c in copies] == ["/app/src"]
    assert copies[0].flags().get("chown")


def test_compose_file_holds_no_credentials(compose: dict[str, Any]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert PLACEHOLDER_PASSWORD not in text
    for service in compose["services"].values():
        environment = service.get("environment") or {}
        keys = environment if isinstance(environment, dict) else [e.split("=", 1)[0] for e in environment]
        assert not {"POSTGRES_PASSWORD", "DATABASE_URL"} & set(keys)


def test_environment_values_are_strings_not_yaml_booleans(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        if isinstance(environment, dict):
            for key, value in environment.items():
                assert isinstance(value, str), f"{name}.{key} must be quoted (YAML turns off/on/yes into booleans)"


# ---- .env.compose ---------------------------------------------------------------------------------


def test_env_compose_has_what_both_services_need(env_compose: dict[str, str], compose: dict[str, Any]) -> None:
    for key in (
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
        "PORT",
    ):
        assert env_compose.get(key), f"{key} missing or empty"
    assert env_compose["POSTGRES_HOST"] in compose["services"], "POSTGRES_HOST must name the db service"
    assert env_compose["POSTGRES_HOST"] == "db"
    assert env_compose["POSTGRES_PORT"] == "5432"
    assert env_compose.get("TIMESCALEDB", "auto") in TIMESCALEDB_MODES


def test_env_compose_holds_only_the_placeholder_password(env_compose: dict[str, str]) -> None:
    assert env_compose["POSTGRES_PASSWORD"] == PLACEHOLDER_PASSWORD
    text = ENV_COMPOSE.read_text(encoding="utf-8")
    assert re.search(r"#.*CHANGE IT", text), "the placeholder must be flagged for change"
    assert "DATABASE_URL" not in env_compose, "a URL would duplicate (and leak) the credentials"
    secretive = re.compile(r"SECRET|TOKEN|API_KEY|PRIVATE", re.IGNORECASE)
    assert not [k for k, v in env_compose.items() if secretive.search(k) and v]


def test_the_app_reads_env_compose_as_compose_would_hand_it_over(
    env_compose: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The api's settings, from exactly these values: the URL the app builds, and its checks pass."""
    for key in [*env_compose, "DATABASE_URL", "STUDYTRACK_HOME"]:
        monkeypatch.delenv(key, raising=False)
    settings = load_settings(ENV_COMPOSE)
    user, password, db = (env_compose[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    assert settings.database_url == f"postgresql://{user}:{password}@db:5432/{db}"
    assert settings.timescaledb == env_compose["TIMESCALEDB"] == "required"
    assert settings.port == 8000
    assert settings.web_concurrency == int(env_compose["WEB_CONCURRENCY"])


# ---- profile "scale" ------------------------------------------------------------------------------


def mounted_files(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file bind-mounted there."""
    mounts = [m.split(":") for m in service.get("volumes", []) if isinstance(m, str) and m.startswith("./")]
    return {parts[1]: REPO / parts[0] for parts in mounts}


def test_the_standby_runs_the_primarys_image_and_clones_it_with_a_script_that_exists(compose: dict[str, Any]) -> None:
    services = compose["services"]
    replica = services["db-replica"]
    assert replica["image"] == services["db"]["image"]
    assert replica["depends_on"]["db"]["condition"] == "service_healthy"
    assert env_files(replica) == [".env.compose"]
    script = mounted_files(replica)[replica["entrypoint"][-1]]
    assert "pg_basebackup" in script.read_text()
    assert "-R" in script.read_text()
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    init = mounted_files(services["db"])
    replication = next(path for target, path in init.items() if target.startswith("/docker-entrypoint-initdb.d/"))
    assert "host replication" in replication.read_text()
    assert subprocess.run(["sh", "-n", str(replication)], check=False).returncode == 0
    assert "pgdata-replica" in (compose.get("volumes") or {})


def test_api_replicas_read_from_the_standby_and_publish_nothing(compose: dict[str, Any]) -> None:
    replica = compose["services"]["api-replica"]
    assert replica["build"] == compose["services"]["api"]["build"]
    assert replica["environment"]["POSTGRES_REPLICA_HOST"] == "db-replica"
    assert replica["depends_on"]["db-replica"]["condition"] == "service_healthy"
    assert replica["deploy"]["replicas"] >= 2
    assert "ports" not in replica
    assert seconds(replica["stop_grace_period"]) > script_default("GRACEFUL_TIMEOUT")


def test_the_load_balancer_spreads_over_every_api_replica_on_its_published_port(compose: dict[str, Any]) -> None:
    lb = compose["services"]["lb"]
    config = mounted_files(lb)["/usr/local/etc/haproxy/haproxy.cfg"].read_text()
    published, container = lb["ports"][0].split(":")
    assert f"bind :{container}" in config
    assert published != compose["services"]["api"]["ports"][0].split(":")[0]
    template = re.search(r"server-template \w+ (\d+) api-replica:8000 .*resolvers docker", config)
    assert template
    assert int(template[1]) >= compose["services"]["api-replica"]["deploy"]["replicas"]
    assert "option httpchk GET /healthz" in config

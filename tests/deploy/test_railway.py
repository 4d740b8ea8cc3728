"""railway.json: Railway builds the Dockerfile, health-checks /healthz, restarts on failure."""

from __future__ import annotations

import fnmatch
from typing import Any

import jsonschema
import pytest

from studytrack.config import Settings
from studytrack.web.app import create_app
from tests.deploy.support import RAILWAY_JSON, REPO, SCHEMAS, load_json, parse_dockerfile, script_default

UNREACHABLE = "postgresql://postgres@127.0.0.1:9/postgres"  # never connected to: routes only


@pytest.fixture(scope="module")
def railway() -> dict[str, Any]:
    config = load_json(RAILWAY_JSON)
    assert isinstance(config, dict)
    return config


def test_railway_json_matches_the_documented_settings(railway: dict[str, Any]) -> None:
    schema = load_json(SCHEMAS / "railway.subset.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(railway)
    ]
    assert errors == []


def test_the_railway_schema_check_catches_typos_and_wrong_types() -> None:
    validator = jsonschema.Draft202012Validator(load_json(SCHEMAS / "railway.subset.schema.json"))
    assert not validator.is_valid({"deploy": {"healthCheckPath": "/healthz"}})
    assert not validator.is_valid({"deploy": {"drainingSeconds": "35"}})
    assert not validator.is_valid({"build": {"builder": "DOCKER"}})


def test_builds_with_the_repository_dockerfile(railway: dict[str, Any]) -> None:
    assert railway["$schema"] == "https://railway.com/railway.schema.json"
    build = railway["build"]
    assert build["builder"] == "DOCKERFILE"
    assert (REPO / build["dockerfilePath"]).resolve() == REPO / "Dockerfile"


def test_image_entrypoint_starts_the_service(railway: dict[str, Any]) -> None:
    """A startCommand would replace the image's ENTRYPOINT (the boot script); there is none."""
    assert "startCommand" not in railway["deploy"]
    assert parse_dockerfile().final.all("ENTRYPOINT")


def test_watch_patterns_cover_everything_that_changes_the_image(railway: dict[str, Any]) -> None:
    patterns = railway["build"]["watchPatterns"]
    for path in (
        "src/studytrack/cli.py",
        "src/studytrack/database/migrations/versions/0001_baseline.py",
        "requirements.txt",
        "pyproject.toml",
        "Dockerfile",
        "boot/docker-run.sh",
        "railway.json",
    ):
        assert any(fnmatch.fnmatch(path, p) for p in patterns), f"a change to {path} would not redeploy"


def test_healthcheck_path_is_the_apps_health_route(railway: dict[str, Any], settings: Settings) -> None:
    app = create_app(settings, database_url=UNREACHABLE)
    get_paths = {path for path, operations in app.openapi()["paths"].items() if "get" in operations}
    assert railway["deploy"]["healthcheckPath"] == "/healthz"
    assert "/healthz" in get_paths


def test_healthcheck_waits_longer_than_the_boot_script_waits_for_the_database(
    railway: dict[str, Any],
) -> None:
    assert railway["deploy"]["healthcheckTimeout"] > script_default("DB_WAIT_SECONDS")


def test_restarts_on_failure_a_bounded_number_of_times(railway: dict[str, Any]) -> None:
    deploy = railway["deploy"]
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert isinstance(deploy["restartPolicyMaxRetries"], int)
    assert 1 <= deploy["restartPolicyMaxRetries"] <= 20


def test_old_deploys_get_time_to_finish_requests(railway: dict[str, Any]) -> None:
    """Railway's SIGTERM-to-SIGKILL time must exceed gunicorn's graceful timeout."""
    assert railway["deploy"]["drainingSeconds"] > script_default("GRACEFUL_TIMEOUT")


def test_migrations_run_in_the_pre_deploy_step_with_the_images_boot_script(railway: dict[str, Any]) -> None:
    """Railway's docs put migrations in the pre-deploy command; ours waits for the database first."""
    (command,) = railway["deploy"]["preDeployCommand"]
    shell, script, mode = command.split()
    copied = {i.operands()[-1] for i in parse_dockerfile().final.all("COPY")}
    assert (shell, mode) == ("/bin/bash", "migrate")
    assert script in copied
    assert (REPO / "boot" / "docker-run.sh").read_text(encoding="utf-8").count('"$1" == migrate') == 1

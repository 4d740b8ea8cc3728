"""deploy/railway/template.json and the README's button: well-formed, connected, documented, usable."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest

from studytrack.config import load_settings, normalize_database_url
from tests.deploy.support import COMPOSE_FILE, REPO, SCHEMAS, load_json, load_yaml
from tests.environment import SERVICE_SETTINGS

TEMPLATE = REPO / "deploy" / "railway" / "template.json"
REFERENCE = re.compile(r"\$\{\{\s*(?:(?P<service>[A-Za-z][A-Za-z0-9_-]*)\.)?(?P<name>[A-Z][A-Z0-9_]*)\s*\}\}")
FUNCTION = re.compile(r"\$\{\{\s*(?P<call>[a-zA-Z]+\(.*?\))\s*\}\}")
SECRET_CALL = re.compile(r'secret\((?P<length>\d+)(?:,\s*"(?P<alphabet>[^"]+)")?\)')
RAILWAY_PROVIDED = {"RAILWAY_PRIVATE_DOMAIN", "RAILWAY_PUBLIC_DOMAIN", "PORT"}  # set by Railway itself
BUTTON = re.compile(r"\[!\[Deploy on Railway\]\((?P<image>[^)]+)\)\]\((?P<url>[^)]+)\)")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded = load_json(TEMPLATE)
    assert isinstance(loaded, dict)
    return loaded


def variables(template: dict[str, Any], service: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = template["services"][service]["variables"]
    return found


def render(value: str, service: str, done: dict[str, dict[str, str]]) -> str:
    """What Railway would store: secret() calls run, references resolved (the private domain made up)."""

    def call(match: re.Match[str]) -> str:
        secret = SECRET_CALL.fullmatch(match["call"])
        assert secret, f"unknown template function {match['call']}"
        alphabet = secret["alphabet"] or "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(secrets.choice(alphabet) for _ in range(int(secret["length"])))

    def reference(match: re.Match[str]) -> str:
        if match["name"] == "RAILWAY_PRIVATE_DOMAIN":
            return f"{service.lower()}.railway.internal"
        return done[match["service"] or service][match["name"]]

    return REFERENCE.sub(reference, FUNCTION.sub(call, value))


@pytest.fixture(scope="module")
def rendered(template: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every service's variables as a deployment would see them: image services (the database) first."""
    done: dict[str, dict[str, str]] = {}
    for name in sorted(template["services"], key=lambda name: "github" in template["services"][name]["source"]):
        done[name] = {}
        for key, spec in variables(template, name).items():
            done[name][key] = render(spec["value"], name, done)
    return done


def documented_settings() -> set[str]:
    """Every name in the first column of docs/configuration.md's and boot/README.md's settings tables."""
    names: set[str] = set()
    for path in (REPO / "docs" / "configuration.md", REPO / "boot" / "README.md"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("| `"):
                names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def test_the_template_description_matches_its_schema(template: dict[str, Any]) -> None:
    schema = load_json(SCHEMAS / "railway-template.schema.json")
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft202012Validator(schema).iter_errors(template)
    ]
    assert errors == []


def test_the_readme_opens_with_the_deploy_button_of_this_template(template: dict[str, Any]) -> None:
    head = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:5])
    match = BUTTON.search(head)
    assert match, "no Deploy on Railway button in the README's first lines"
    assert match["image"] == template["button"]["image"] == "https://railway.com/button.svg"
    assert match["url"] == template["button"]["url"]


def test_the_button_url_is_railways_documented_template_link(template: dict[str, Any]) -> None:
    url = urlsplit(template["button"]["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "railway.com", f"/new/template/{template['code']}")
    query = parse_qs(url.query, strict_parsing=True)
    assert query == {"utm_medium": ["integration"], "utm_source": ["button"], "utm_campaign": [template["name"]]}
    assert not url.fragment


def test_every_reference_names_a_service_and_a_variable_it_defines(template: dict[str, Any]) -> None:
    for name, service in template["services"].items():
        for key, spec in service["variables"].items():
            for ref in REFERENCE.finditer(spec["value"]):
                owner = ref["service"] or name
                assert owner in template["services"], f"{name}.{key} references unknown service {owner}"
                defined = set(template["services"][owner]["variables"]) | RAILWAY_PROVIDED
                assert ref["name"] in defined, f"{name}.{key} references {owner}.{ref['name']}, never set"


def test_the_api_reaches_timescaledb_by_reference_and_requires_it(template: dict[str, Any]) -> None:
    api = variables(template, "studytrack")
    assert api["DATABASE_URL"]["value"] == "${{TimescaleDB.DATABASE_URL}}"
    assert api["TIMESCALEDB"]["value"] == "required"
    assert "RAILWAY_PRIVATE_DOMAIN" in variables(template, "TimescaleDB")["DATABASE_URL"]["value"]


def test_the_database_is_the_compose_image_on_a_volume_and_private(template: dict[str, Any]) -> None:
    database = template["services"]["TimescaleDB"]
    assert database["source"]["image"] == load_yaml(COMPOSE_FILE)["services"]["db"]["image"]
    assert database["volume"]["mountPath"] == "/var/lib/postgresql/data"
    pgdata = Path(database["variables"]["PGDATA"]["value"])
    assert pgdata.parent == Path(database["volume"]["mountPath"])  # inside the volume, not its root
    assert database["publicNetworking"] == "none"


def test_secrets_are_generated_on_deploy_and_nothing_else_is(template: dict[str, Any]) -> None:
    for service in template["services"].values():
        for key, spec in service["variables"].items():
            generated = bool(FUNCTION.search(spec["value"]))
            assert generated == spec.get("generated", False), key
            for call in FUNCTION.finditer(spec["value"]):
                assert SECRET_CALL.fullmatch(call["call"]), f"{key}: {call['call']}"
    assert variables(template, "studytrack")["ADMIN_TOKEN"].get("generated")
    assert variables(template, "TimescaleDB")["POSTGRES_PASSWORD"].get("generated")


def test_every_api_variable_is_a_documented_setting(template: dict[str, Any]) -> None:
    documented = documented_settings()
    for key in variables(template, "studytrack"):
        assert key in documented, f"{key} is not in docs/configuration.md's or boot/README.md's settings tables"
        assert key in SERVICE_SETTINGS, f"{key} is not in tests/environment.py's SERVICE_SETTINGS"


def test_every_database_variable_is_explained_in_the_railway_docs(template: dict[str, Any]) -> None:
    page = (REPO / "docs" / "deploy-railway.md").read_text(encoding="utf-8")
    for service in template["services"]:
        for key in variables(template, service):
            assert f"`{key}`" in page, f"docs/deploy-railway.md does not mention {service}'s {key}"


def test_the_rendered_variables_are_settings_the_service_accepts(
    rendered: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in SERVICE_SETTINGS:
        monkeypatch.delenv(key, raising=False)
    for key, value in rendered["studytrack"].items():
        monkeypatch.setenv(key, value)
    settings = load_settings(tmp_path / ".env")
    assert settings.admin_token == rendered["studytrack"]["ADMIN_TOKEN"]
    assert settings.timescaledb == "required"
    url = urlsplit(normalize_database_url(rendered["studytrack"]["DATABASE_URL"]))
    assert (url.hostname, url.port, url.path) == ("timescaledb.railway.internal", 5432, "/studytrack")
    assert url.password == rendered["TimescaleDB"]["POSTGRES_PASSWORD"]

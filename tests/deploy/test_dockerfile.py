"""Dockerfile and .dockerignore, read as text (no Docker engine here) and linted with hadolint."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.deploy.support import (
    BOOT_SCRIPT,
    DOCKERFILE,
    REPO,
    Dockerfile,
    find_tool,
    is_ignored,
    parse_dockerfile,
    parse_dockerignore,
)

COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|[\w.-]+-dev)\b")
ROOT_USERS = {"root", "0", "0:0", "root:root"}


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile()


def test_hadolint_passes() -> None:
    hadolint = find_tool("hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_stage_is_the_pinned_official_slim_python_3_11(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2, "multi-stage: a builder and a runtime"
    for stage in dockerfile.stages:
        assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)", stage.image), stage.image


def test_builder_installs_the_pinned_requirements_then_the_project(dockerfile: Dockerfile) -> None:
    builder = dockerfile.stages[0]
    copied = [c.operands()[0] for c in builder.all("COPY")]
    runs = " ".join(r.args for r in builder.all("RUN"))
    assert "requirements.txt" in copied
    assert re.search(r"pip install [^&;]*-r requirements\.txt", runs)
    assert re.search(r"pip install [^&;]*(--no-deps)[^&;]* (--editable|-e)? ?\.", runs)
    # requirements first: a code change must not invalidate the dependency layer
    assert copied.index("requirements.txt") < copied.index("src")


def test_runtime_stage_has_no_build_tools_and_installs_nothing(dockerfile: Dockerfile) -> None:
    final = dockerfile.final
    for run in final.all("RUN"):
        assert not COMPILERS.search(run.args), f"line {run.line}: build tools in the runtime image"
        assert "pip install" not in run.args, f"line {run.line}: the runtime stage only copies the venv"
        assert "apt-get install" not in run.args, f"line {run.line}: the slim base needs nothing more"
    from_builder = [c for c in final.all("COPY") if c.flags().get("from")]
    assert [c.operands() for c in from_builder] == [["/opt/venv", "/opt/venv"]]
    assert {c.flags()["from"] for c in from_builder} == {dockerfile.stages[0].name}


def test_runtime_runs_as_a_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].args
    assert user not in ROOT_USERS
    # numeric, so that runtimes enforcing runAsNonRoot can verify it
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), user
    # and it is the user created in this stage
    uid = user.split(":")[0]
    assert any(f"--uid {uid}" in r.args for r in dockerfile.final.all("RUN"))


def test_runtime_environment(dockerfile: Dockerfile) -> None:
    env = " ".join(e.args for e in dockerfile.final.all("ENV"))
    for setting in (
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
        "PATH=/opt/venv/bin:$PATH",
        "PORT=8000",
    ):
        assert setting in env
    assert [p for e in dockerfile.final.all("EXPOSE") for p in e.operands()] == ["8000"]


def test_healthcheck_probes_healthz_on_the_runtime_port(dockerfile: Dockerfile) -> None:
    checks = dockerfile.final.all("HEALTHCHECK")
    assert len(checks) == 1
    command = checks[0].args.split(" CMD ", 1)[1]
    assert command.startswith("["), "exec form: no shell needed in the probe"
    assert "/healthz" in command
    assert "os.environ.get('PORT'" in command, "the probe must follow $PORT (Railway sets it)"
    assert "curl" not in command
    assert "wget" not in command
    assert re.search(r"--start-period=\d+s", checks[0].args)


def test_entrypoint_is_the_boot_script(dockerfile: Dockerfile) -> None:
    entrypoints = dockerfile.final.all("ENTRYPOINT")
    assert len(entrypoints) == 1
    assert entrypoints[0].args.startswith("["), "exec form, so that signals reach the process"
    command = entrypoints[0].operands()
    script = command[-1]
    assert script.endswith("boot/docker-run.sh")
    copied_to = {c.operands()[-1]: c.operands()[0] for c in dockerfile.final.all("COPY")}
    assert copied_to.get(script) == "boot/docker-run.sh", "the entrypoint runs the script the image copies"
    assert not dockerfile.final.all("CMD"), "no CMD: the boot script takes no arguments"


def test_every_copied_source_exists_and_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    rules = parse_dockerignore()
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            if "from" in copy.flags():
                continue
            for source in copy.operands()[:-1]:
                assert (REPO / source).exists(), f"line {copy.line}: {source} does not exist"
                assert not is_ignored(source, rules), f"line {copy.line}: .dockerignore excludes {source}"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        ".env",
        ".env.compose",
        ".studytrack/pgdata/PG_VERSION",
        "node_modules/x/index.js",
        "tests/timescaledb/server/node_modules/pg/index.js",
        "tests/conftest.py",
        "notebooks/explore.ipynb",
        ".pytest_cache/v/cache/lastfailed",
        ".mypy_cache/3.11/x.json",
        ".hypothesis/examples/x",
        "src/studytrack/__pycache__/cli.cpython-311.pyc",
        "src/studytrack.egg-info/PKG-INFO",
        "build/lib/x.py",
        "docker-compose.yml",
    ],
)
def test_dockerignore_keeps_out(path: str) -> None:
    assert is_ignored(path, parse_dockerignore())


@pytest.mark.parametrize(
    "path",
    [
        "src/studytrack/cli.py",
        "src/studytrack/database/migrations/versions/0001_baseline.py",
        "src/studytrack/database/migrations/script.py.mako",
        "requirements.txt",
        "pyproject.toml",
        "boot/docker-run.sh",
        "Dockerfile",
    ],
)
def test_dockerignore_keeps_in(path: str) -> None:
    assert not is_ignored(path, parse_dockerignore())


def test_every_file_under_src_reaches_the_image() -> None:
    rules = parse_dockerignore()
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "src"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.split()
    assert tracked
    assert [path for path in tracked if is_ignored(path, rules)] == []


def test_boot_script_is_executable_and_bash() -> None:
    assert BOOT_SCRIPT.read_text(encoding="utf-8").startswith("#!/usr/bin/env bash\n")
    assert BOOT_SCRIPT.stat().st_mode & 0o111, "chmod +x boot/docker-run.sh"

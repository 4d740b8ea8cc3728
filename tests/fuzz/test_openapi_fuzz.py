"""Schemathesis against our own OpenAPI schema, on a real gunicorn (loopback) over a fresh PostgreSQL database.

Every operation gets `EXAMPLES` generated requests that fit the schema and `EXAMPLES` that do not, once with an
admin token and once without any token. No answer may be a 5xx, every status code must be declared, and every
body must match its declared schema. Generation is derandomized: CI sends the same requests every run.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests.databases import backend_mode, backend_server, create_database
from tests.faults.harness import Server, create_admin_token, gunicorn, record

EXAMPLES = 50  # per operation and generation mode
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
AnyOperation = APIOperation[Any, Any, Any, Any]
AnyCase = Case[Any]
FUZZ_SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the same cases every run, in CI and locally
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@dataclasses.dataclass(frozen=True)
class Live:
    server: Server
    token: str


@pytest.fixture(scope="module")
def live(
    backend: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("fuzz")
    url = create_database(backend_server(backend, request), "fuzz")
    run_migrations(url, backend_mode(backend, settings))
    token = create_admin_token(url, "fuzz-admin", workdir)
    with gunicorn(url, workers=1, workdir=workdir) as server:
        yield Live(server, token)


@dataclasses.dataclass
class Run:
    """What one fuzz run sent and got."""

    cases: dict[str, int] = dataclasses.field(default_factory=dict)  # per operation and mode
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    failures: list[str] = dataclasses.field(default_factory=list)


def fuzz_operation(
    operation: AnyOperation, mode: GenerationMode, send: Callable[[AnyCase], Response], run: Run
) -> None:
    """Up to EXAMPLES cases of `operation`; a failure (after shrinking) is kept in `run`, not raised."""
    label = f"{operation.label} [{mode.value}]"
    run.cases[label] = 0

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: AnyCase) -> None:
        run.cases[label] += 1
        run.statuses[send(case).status_code] += 1

    try:
        fuzz()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis groups its check failures
        run.failures.append(f"{label}:\n{exc}")


@pytest.mark.parametrize("auth", ["admin-token", "no-token"])
def test_no_operation_answers_a_5xx_or_outside_its_schema(live: Live, auth: str) -> None:
    schema = schemathesis.openapi.from_url(f"{live.server.base_url}/openapi.json", timeout=30)
    headers = {"Authorization": f"Bearer {live.token}"} if auth == "admin-token" else {}
    session = requests.Session()

    def send(case: AnyCase) -> Response:
        return case.call_and_validate(session=session, headers=headers, checks=CHECKS, timeout=30)

    run = Run()
    started = time.monotonic()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema is invalid: {result.err()}"
        operation = result.ok()
        inputs = (operation.path_parameters, operation.headers, operation.cookies, operation.query, operation.body)
        # Negative cases need something to get wrong: a parameter or a body.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if any(map(len, inputs)) else [])
        for mode in modes:
            fuzz_operation(operation, mode, send, run)

    figures = {
        "auth": auth,
        "operations": len({label.rsplit(" [", 1)[0] for label in run.cases}),
        "cases": sum(run.cases.values()),
        "examples_per_operation_and_mode": EXAMPLES,
        "seconds": round(time.monotonic() - started, 1),
        "failures": len(run.failures),
        "statuses": dict(sorted(run.statuses.items())),
        "cases_per_operation": run.cases,
    }
    record(f"openapi_fuzz_{auth}", figures)
    assert not run.failures, "\n\n".join(run.failures) + f"\n\nserver log (tail):\n{live.server.output()[-3000:]}"

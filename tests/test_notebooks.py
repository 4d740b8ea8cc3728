"""The notebooks run headless, top to bottom: `explore.ipynb` against a live server, `timescaledb.ipynb` against
a database on the native TimescaleDB test server; none is committed with outputs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from studytrack.config import Settings
from studytrack.database.migrate import run_migrations
from tests import REPO
from tests.databases import create_database
from tests.live import LiveServer, admin_token, fresh_database, gunicorn

NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT_SECONDS = 180

# Appended to the executed copy only: draws every figure the notebook made (Agg renders nothing until asked).
DRAW_FIGURES = """
import matplotlib.pyplot as plt
for number in plt.get_fignums():
    plt.figure(number).canvas.draw()
print("figures:", len(plt.get_fignums()))
"""


@pytest.fixture(scope="module", params=["with_a_token", "with_auth_disabled"])
def live_server(
    server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    url = fresh_database(server_url, settings, "studytrack_notebook")
    auth_disabled = "true" if request.param == "with_auth_disabled" else "false"
    log = tmp_path_factory.mktemp("notebook") / "gunicorn.log"
    with gunicorn(url, log, LOG_LEVEL="warning", AUTH_DISABLED=auth_disabled) as server:
        yield server


@pytest.mark.parametrize("name", sorted(path.name for path in NOTEBOOKS.glob("*.ipynb")))
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code), (
        f"clear the outputs of {name}: jupyter nbconvert --clear-output --inplace notebooks/{name}"
    )
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_explore_notebook_runs_against_a_live_server(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("STUDYTRACK_URL", live_server.url)
    monkeypatch.setenv("STUDYTRACK_HOME", str(tmp_path))  # no admin-token file: a token only if the test sets one
    auth_disabled = request.node.callspec.params["live_server"] == "with_auth_disabled"
    if auth_disabled:
        monkeypatch.delenv("STUDYTRACK_TOKEN", raising=False)
    else:
        monkeypatch.setenv("STUDYTRACK_TOKEN", admin_token(live_server.database_url, "nb"))
    monkeypatch.setenv("MPLBACKEND", "Agg")  # the kernel inherits this environment
    notebook = nbformat.read(NOTEBOOKS / "explore.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    notebook.cells.append(nbformat.v4.new_code_cell(DRAW_FIGURES))  # type: ignore[no-untyped-call]

    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_SECONDS,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error

    printed = "".join(
        output.get("text", "") for output in notebook.cells[-1].outputs if output.get("output_type") == "stream"
    )
    assert int(printed.split("figures:")[1]) >= 6
    stored = [cell for cell in notebook.cells if 'post("/api/events/batch", demo)' in cell.source]
    output = "".join(o.get("text", "") for cell in stored for o in cell.outputs)
    assert "again:  0 new" in output
    connected = "".join(
        o.get("text", "") for cell in notebook.cells if "find_token()" in cell.source for o in cell.outputs
    )
    assert ("API token: none" if auth_disabled else "API token: set") in connected


def test_timescaledb_notebook_runs_against_a_timescaledb_database(
    timescaledb_server_url: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database(timescaledb_server_url, "studytrack_notebook_ts")
    run_migrations(url, dataclasses.replace(settings, timescaledb="required"))
    monkeypatch.setenv("DATABASE_URL", url)
    notebook = nbformat.read(NOTEBOOKS / "timescaledb.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook, kernel_name="python3", timeout=CELL_TIMEOUT_SECONDS, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    printed = "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))
    assert "plain PostgreSQL mode" not in printed

"""The embedded PostgreSQL as a newcomer starts it: where XDG_RUNTIME_DIR is unset, too (containers, CI, ssh)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from tests import REPO

_START_AND_STOP = """
import sys
from pathlib import Path
from studytrack.database.embedded import start_embedded_database, stop_embedded_database
server, url = start_embedded_database(Path(sys.argv[1]))
stop_embedded_database(server)
print("stopped")
"""


def test_starting_the_embedded_database_without_xdg_runtime_dir_prints_no_warning() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "PYTHONWARNINGS")}
    with tempfile.TemporaryDirectory(prefix="studytrack-embedded-") as parent:  # not tmp_path: see test_cli.py
        started = subprocess.run(
            [sys.executable, "-W", "default", "-c", _START_AND_STOP, f"{parent}/home"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "stopped"
    assert "XDG_RUNTIME_DIR" not in started.stderr
    assert "Warning" not in started.stderr, started.stderr

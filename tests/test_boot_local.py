"""`./boot/local.sh` serves on the embedded default and says how to reach the command line, `./boot/studytrack`,
which works from any directory on the same embedded database."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx
import pytest

from tests import REPO
from tests.live import free_port, wait_healthy


def clean_env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "POSTGRES_HOST", "STUDYTRACK_HOME")}
    return env | settings


def test_local_boot_names_the_cli_and_the_cli_adds_demo_sessions_to_the_served_database() -> None:
    with tempfile.TemporaryDirectory(prefix="studytrack-local-") as parent:
        home, log = Path(parent) / "home", Path(parent) / "local.log"
        port = free_port()
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(REPO / "boot/local.sh"), "--port", str(port)],
                env=clean_env(STUDYTRACK_HOME=str(home)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, server, log.read_text, seconds=180)
            assert "./boot/studytrack" in log.read_text()

            elsewhere = Path(parent) / "elsewhere"
            elsewhere.mkdir()
            demo = subprocess.run(
                [str(REPO / "boot/studytrack"), "demo", "--days", "7"],
                cwd=elsewhere,
                env=clean_env(STUDYTRACK_HOME=str(home)),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert demo.returncode == 0, demo.stdout + demo.stderr
            token = (home / "admin-token").read_text().strip()
            stats = httpx.get(f"{base}/api/stats/", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
            assert stats["total_sessions"] > 0
            assert set(stats["time_by_tag"]) <= {
                "CKA",
                "CKAD",
                "Terraform",
                "AWS SAA",
                "GitHub Actions",
                "Docker",
                "Linux",
                "Prometheus",
            }
        finally:
            os.killpg(server.pid, signal.SIGINT)  # Ctrl-C in the terminal
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail("./boot/local.sh did not stop on Ctrl-C")

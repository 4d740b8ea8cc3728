"""The CSV study tracker's front end, configured only through its `API_URL`, against a default server (auth on).

The front end is a Flask page that calls the API with `requests`; it cannot send a bearer token, so the token
rides in the URL as the password of HTTP Basic auth. These are its calls, made the way it makes them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from studytrack.config import Settings
from tests import REPO
from tests.live import LiveServer, fresh_database, gunicorn


def tracker_token(database_url: str) -> str:
    """What an operator runs once: `studytrack token create --name tracker --scope ingest --scope read`."""
    env = os.environ | {"DATABASE_URL": database_url, "TIMESCALEDB": "off"}
    command = [sys.executable, "-m", "studytrack", "token", "create", "--name", "tracker"]
    command += ["--scope", "ingest", "--scope", "read"]
    created = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    return created.stdout.strip().splitlines()[-1]


def with_password(url: str, token: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"tracker:{token}@{parts.netloc}"))


@pytest.fixture(scope="module")
def server(server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database_url = fresh_database(server_url, settings, "tracker_front_end")
    with gunicorn(database_url, tmp_path_factory.mktemp("tracker") / "server.log") as live:
        yield live


@pytest.fixture(scope="module")
def api_url(server: LiveServer) -> str:
    return with_password(server.url, tracker_token(server.database_url))


def test_without_the_token_in_its_api_url_the_front_end_is_refused_not_misled(server: LiveServer) -> None:
    assert requests.get(f"{server.url}/sessions", timeout=10).status_code == 401
    assert requests.post(f"{server.url}/sessions", json={"minutes": 25, "tag": "CKA"}, timeout=10).status_code == 401


def test_the_front_end_adds_lists_and_totals_sessions_through_its_api_url(api_url: str) -> None:
    assert requests.get(f"{api_url}/", timeout=10).json() == {"message": "DevOps Study Tracker API"}
    assert requests.get(f"{api_url}/health", timeout=10).json() == {"status": "healthy"}
    for minutes, tag in [(25, "Kubernetes"), (50, "AWS SAA"), (15, "Kubernetes")]:
        added = requests.post(f"{api_url}/sessions", json={"minutes": minutes, "tag": tag}, timeout=10)
        assert added.status_code == 200, added.text
        assert added.json()["tag"] == tag

    listed = requests.get(f"{api_url}/sessions", timeout=10).json()
    assert [(session["minutes"], session["tag"]) for session in listed] == [
        (25, "Kubernetes"),
        (50, "AWS SAA"),
        (15, "Kubernetes"),
    ]
    stats = requests.get(f"{api_url}/stats", timeout=10).json()
    assert stats["time_by_tag"]["Kubernetes"] == 40
    assert stats["sessions_by_tag"] == {"Kubernetes": 2, "AWS SAA": 1}
    assert stats["total_time"] == 90


def test_a_wrong_password_is_a_401_and_adds_nothing(server: LiveServer, api_url: str) -> None:
    before = len(requests.get(f"{api_url}/sessions", timeout=10).json())
    wrong = with_password(server.url, "st_wrong_token")
    assert requests.post(f"{wrong}/sessions", json={"minutes": 5, "tag": "CKA"}, timeout=10).status_code == 401
    assert len(requests.get(f"{api_url}/sessions", timeout=10).json()) == before

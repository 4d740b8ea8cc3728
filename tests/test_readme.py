"""The README's and docs/api.md's command examples run as written, in order, and answer what they show.

One script, against a live server: the README's examples, then docs/api.md's, which build on the README's data.
Run: every ```bash block that talks to the service (`$BASE`) or uses the command line (`studytrack ...`), except
the block that sets `BASE` and `TOKEN` (the test sets both). Compared: a `# {...}` line under a command is that
command's answer; a ```json block right after a bash block is the answer of its last command; `"..."` in an
answer matches any value. Every HTTP answer must be 2xx.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from studytrack.config import Settings
from tests import REPO
from tests.live import LiveServer, admin_token, fresh_database, gunicorn

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
MARK = "@@readme-command"
# Every curl also reports its status on stderr, where a pipe (`| python3 ...`) does not see it.
CURL_STATUS = 'curl() { command curl -w "%{stderr}@@status %{http_code}\\n" "$@"; }\n'


@dataclass
class Command:
    text: str
    expected: Any = None


@dataclass
class Block:
    line: int
    commands: list[Command] = field(default_factory=list)


def runnable(code: str) -> bool:
    talks = "$BASE" in code or re.search(r"^studytrack ", code, re.M) is not None
    return talks and "BASE=http" not in code


def readme_blocks(text: str) -> list[Block]:
    fences = list(FENCE.finditer(text))
    blocks = []
    for index, fence in enumerate(fences):
        if fence.group(1) != "bash" or not runnable(fence.group(2)):
            continue
        block = Block(text.count("\n", 0, fence.start()) + 1)
        pending = ""
        for line in fence.group(2).splitlines():
            if line.startswith("# {"):
                block.commands[-1].expected = json.loads(line[2:])
            elif pending or (line.strip() and not line.startswith("#")):
                pending += line + "\n"
                if not line.endswith("\\"):
                    block.commands.append(Command(pending))
                    pending = ""
        after = fences[index + 1] if index + 1 < len(fences) else None
        if after and after.group(1) == "json" and text[fence.end() : after.start()].strip() == "":
            block.commands[-1].expected = json.loads(after.group(2))
        blocks.append(block)
    return blocks


def matches(expected: Any, actual: Any) -> bool:
    if expected == "...":
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(matches, expected, actual))
    return bool(expected == actual)


@pytest.fixture(scope="module")
def server(server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database_url = fresh_database(server_url, settings, "readme")
    with gunicorn(database_url, tmp_path_factory.mktemp("readme") / "server.log") as live:
        yield live


PAGES = ("README.md", "docs/api.md")


def test_the_examples_of_both_pages_are_found() -> None:
    for page, least in zip(PAGES, (3, 3), strict=True):
        assert len(readme_blocks((REPO / page).read_text())) >= least, f"{page}'s examples: is the fence still ```bash?"


def test_the_readmes_examples_run_in_order_and_answer_what_they_show(server: LiveServer, tmp_path: Path) -> None:
    blocks = [block for page in PAGES for block in readme_blocks((REPO / page).read_text())]
    script = "set -euo pipefail\n" + CURL_STATUS
    commands = [command for block in blocks for command in block.commands]
    for number, command in enumerate(commands):
        script += f"{command.text}echo; echo {MARK} {number}\n"
    env = os.environ | {
        "BASE": server.url,
        "TOKEN": admin_token(server.database_url, "readme"),
        "DATABASE_URL": server.database_url,
        "TIMESCALEDB": "off",
        "PATH": f"{REPO / '.venv/bin'}:{os.environ['PATH']}",
    }
    ran = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    outputs = re.split(rf"^{MARK} \d+\n", ran.stdout, flags=re.M)
    stopped = f"stopped after {len(outputs) - 1} of {len(commands)} commands:\n{ran.stdout}\n{ran.stderr}"
    assert ran.returncode == 0, stopped
    assert len(outputs) == len(commands) + 1, stopped
    statuses = re.findall(r"^@@status (\d+)$", ran.stderr, re.M)
    assert len(statuses) >= sum(command.text.count("curl ") for command in commands)
    assert all(status.startswith("2") for status in statuses), ran.stderr
    for command, output in zip(commands, outputs, strict=False):
        if command.expected is not None:
            actual = json.loads(output)
            assert matches(command.expected, actual), f"{command.text}shows {command.expected}\nanswered {actual}"

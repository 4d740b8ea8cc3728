"""Build the pinned TimescaleDB into the embedded PostgreSQL, once per machine (`studytrack timescaledb install`).

The built files are cached under the user's cache directory, keyed by TimescaleDB version, PostgreSQL version
and machine, so a second install or a new virtualenv only copies them into the wheel's `pginstall/`.
"""

from __future__ import annotations

import filecmp
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO

from studytrack.database.wheel import postgres_bin_path

TIMESCALEDB_VERSION = "2.29.2"
DEFAULT_SOURCE = f"https://github.com/timescale/timescaledb/archive/refs/tags/{TIMESCALEDB_VERSION}.tar.gz"
BUILD_TOOLS = ("cmake", "make", "cc")
DOWNLOAD_TIMEOUT_SECONDS = 60
_CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
    "-DLINTER=OFF",
    "-DSEND_TELEMETRY_DEFAULT=OFF",
    "-DUSE_OPENSSL=0",  # the wheel's PostgreSQL is built without OpenSSL
)
_PERCENT = re.compile(r"^\[\s*(\d+)%\]")
Progress = Callable[[str], None]


class TimescaleDBInstallError(RuntimeError):
    """The extension could not be built or installed; the message says what to install or pass."""


def pginstall() -> Path:
    """The embedded PostgreSQL's installation (imported lazily: deployments with DATABASE_URL lack the wheel)."""
    return postgres_bin_path().parent


def postgresql_version() -> str:
    output = subprocess.run(
        [str(pginstall() / "bin" / "pg_config"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return output.split()[-1]  # "PostgreSQL 18.6"


def is_installed(prefix: Path | None = None) -> bool:
    """The pinned version's library and control file are in the embedded PostgreSQL."""
    prefix = prefix or pginstall()
    return (prefix / "lib" / f"timescaledb-{TIMESCALEDB_VERSION}.so").is_file() and (
        prefix / "share" / "extension" / "timescaledb.control"
    ).is_file()


def cache_directory() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = f"{TIMESCALEDB_VERSION}-pg{postgresql_version()}-{platform.machine()}"
    return base / "studytrack" / "timescaledb" / key


def missing_build_tools() -> list[str]:
    return [tool for tool in BUILD_TOOLS if shutil.which(tool) is None]


def install(source: str = DEFAULT_SOURCE, progress: Progress = print) -> Path:
    """Install into the embedded PostgreSQL, building into the cache first if it is not there; the cache path."""
    cache = cache_directory()
    if not (cache / "lib").is_dir():
        _build_into_cache(source, cache, progress)
    else:
        progress(f"using the TimescaleDB {TIMESCALEDB_VERSION} built earlier on this machine ({cache})")
    for part in ("lib", "share"):
        _install_tree(cache / part, pginstall() / part)
    progress(f"TimescaleDB {TIMESCALEDB_VERSION} is installed in {pginstall()}")
    return cache


def _install_tree(source: Path, target: Path) -> None:
    """Copy each file that differs under a temporary name, then rename it into place: a running server keeps
    the library it mapped (overwriting a loaded .so in place would crash it)."""
    for path in source.rglob("*"):
        if path.is_dir():
            continue
        destination = target / path.relative_to(source)
        if destination.is_file() and filecmp.cmp(path, destination, shallow=False):
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.partial")
        shutil.copy2(path, partial)
        os.replace(partial, destination)


def _build_into_cache(source: str, cache: Path, progress: Progress) -> None:
    if missing := missing_build_tools():
        raise TimescaleDBInstallError(
            f"building TimescaleDB needs {', '.join(missing)} on PATH: install them"
            " (Debian/Ubuntu: apt-get install cmake gcc make; macOS: xcode-select --install && brew install cmake)"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="studytrack-timescaledb-", dir=cache.parent) as work:
        tree = _source_tree(source, Path(work), progress)
        log = cache.parent / f"build-{cache.name}.log"
        progress(f"building TimescaleDB {TIMESCALEDB_VERSION} for PostgreSQL {postgresql_version()} (about a minute)")
        with log.open("w") as out:
            _run([str(tree / "bootstrap"), *_CMAKE_OPTIONS, f"-DPG_CONFIG={pginstall() / 'bin' / 'pg_config'}"],
                 tree, out, log)  # fmt: skip
            _run_make(["make", "-C", "build", f"-j{os.cpu_count() or 1}"], tree, out, log, progress)
            stage = Path(work) / "stage"
            _run(["make", "-C", "build", "install", f"DESTDIR={stage}"], tree, out, log)
        built = Path(work) / "built"
        staged = stage / str(pginstall()).lstrip("/")
        for part in ("lib", "share"):
            shutil.copytree(staged / part, built / part)
        built.rename(cache)  # atomic: a cache directory is complete or absent
    progress(f"built; cached in {cache}")


def _source_tree(source: str, work: Path, progress: Progress) -> Path:
    """A directory holding TimescaleDB's source, from a tarball path or URL, or the directory itself."""
    path = Path(source).expanduser()
    if source.startswith(("https://", "http://")):
        path = work / "source.tar.gz"
        progress(f"downloading {source}")
        try:
            with urllib.request.urlopen(source, timeout=DOWNLOAD_TIMEOUT_SECONDS) as answer, path.open("wb") as out:  # noqa: S310
                shutil.copyfileobj(answer, out)
        except OSError as exc:
            raise TimescaleDBInstallError(
                f"cannot download {source} ({exc}): pass --source with a path to the TimescaleDB"
                f" {TIMESCALEDB_VERSION} source tarball or directory"
            ) from None
    if path.is_dir() and (path / "bootstrap").is_file():
        return path
    if not path.is_file():
        raise TimescaleDBInstallError(
            f"no TimescaleDB source at {source}: pass --source with the {TIMESCALEDB_VERSION} source tarball,"
            f" its directory, or a URL (default {DEFAULT_SOURCE})"
        )
    progress(f"unpacking {path.name}")
    try:
        with tarfile.open(path) as archive:
            archive.extractall(work / "source", filter="data")
    except tarfile.TarError as exc:
        raise TimescaleDBInstallError(f"{source} is not a readable tarball: {exc}") from None
    trees = [entry for entry in (work / "source").iterdir() if (entry / "bootstrap").is_file()]
    if len(trees) != 1:
        raise TimescaleDBInstallError(f"{source} does not hold one TimescaleDB source tree")
    return trees[0]


def _run(command: list[str], cwd: Path, out: IO[str], log: Path) -> None:
    completed = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise TimescaleDBInstallError(f"`{' '.join(command[:3])}` failed; its output is in {log}")


def _run_make(command: list[str], cwd: Path, out: IO[str], log: Path, progress: Progress) -> None:
    """make, reporting its percentage every 10 points."""
    shown = -10
    with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as make:
        assert make.stdout is not None
        for line in make.stdout:
            out.write(line)
            if (match := _PERCENT.match(line)) and int(match[1]) >= shown + 10:
                shown = int(match[1]) // 10 * 10
                progress(f"  compiling: {shown}%")
    if make.returncode != 0:
        raise TimescaleDBInstallError(f"`{' '.join(command[:3])}` failed; its output is in {log}")

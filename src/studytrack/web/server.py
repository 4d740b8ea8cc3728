"""Run gunicorn in-process (for `studytrack serve`) with the same settings as `boot/docker-run.sh`."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from studytrack.web import gunicorn_conf


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], database_url: str) -> None:
        self.options = options
        self.database_url = database_url
        super().__init__()

    def load_config(self) -> None:
        defaults = {name: getattr(gunicorn_conf, name) for name in dir(gunicorn_conf) if not name.startswith("_")}
        for name, value in (defaults | self.options).items():
            if name in self.cfg.settings and value is not None:
                self.cfg.set(name, value)

    def load(self) -> Any:
        from studytrack.web.app import create_app

        return create_app(database_url=self.database_url)


def run_gunicorn(*, database_url: str, host: str, port: int, workers: int) -> None:
    _Gunicorn({"bind": f"{host}:{port}", "workers": workers}, database_url).run()

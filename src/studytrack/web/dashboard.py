"""`GET /dashboard`: one page charting `GET /api/events/`; its files are package data served at `/static`.

No build step and no CDN: the page, `static/dashboard.js`, `static/dashboard.css` and the vendored chart
library (see `static/README.md`) are served by this app, so the dashboard works offline.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from studytrack import __version__
from studytrack.web.flat import FlatRouter

STATIC_PATH = "/static"
# Only our own files: the page's script reads the token and calls the API with it.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the page URL may carry a token on first load
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}

router = FlatRouter(include_in_schema=False)  # no alias: the page loads its files by relative URLs


@cache
def _page() -> str:
    template = files("studytrack.web").joinpath("templates", "dashboard.html").read_text(encoding="utf-8")
    return template.replace("{{version}}", __version__)  # new asset URLs per release: no stale cached scripts


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(_page(), headers=SECURITY_HEADERS)


def static_files() -> StaticFiles:
    """Mount with `app.mount(STATIC_PATH, static_files(), name="static")`."""
    return StaticFiles(packages=[("studytrack.web", "static")])

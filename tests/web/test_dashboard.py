"""GET /dashboard in real headless Chromium, against a real server (gunicorn) on a fresh PostgreSQL database.

Chromium is the Debian package (`apt-get install -y chromium`), driven by Playwright's Python API with
`executable_path`; Playwright's own browser download is not used. Locally a missing browser skips these tests;
with CI set it fails them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from studytrack.config import Settings
from tests import REPO
from tests.live import fresh_database, gunicorn

try:
    from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, Playwright, Request, sync_playwright
except ImportError:  # pragma: no cover - reported by the `playwright` fixture
    sync_playwright = None  # type: ignore[assignment]

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000

# Known sessions (UTC). The browser runs in Europe/Berlin, so the dashboard's default zone is Berlin.
SESSIONS = [
    {"time": "2025-01-06T08:00:00Z", "tag": "cka", "minutes": 30},
    {"time": "2025-01-06T18:00:00Z", "tag": "ckad", "minutes": 45},
    {"time": "2025-01-08T09:00:00Z", "tag": "cka", "minutes": 60},
    {"time": "2025-01-14T23:30:00Z", "tag": "cka", "minutes": 15},  # January 15 in Berlin
    {"time": "2025-01-15T10:00:00Z", "tag": "terraform", "minutes": 20},
    {"time": "2025-01-19T23:30:00Z", "tag": "cka", "minutes": 50},  # January 20 in Berlin: after the range
]
RANGE = "from=2025-01-06&to=2025-01-19"  # 14 days, To inclusive


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the dashboard browser tests must run in CI: {reason}")
    pytest.skip(f"browser tests need Chromium and Playwright: {reason}")


def _chromium() -> str | None:
    if configured := os.environ.get("CHROMIUM"):
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if sync_playwright is None:
        _unavailable("pip install -r requirements-dev.txt (playwright)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, with a fresh empty profile (Playwright makes a temporary user-data-dir)."""
    executable = _chromium()
    if executable is None:
        _unavailable("no Chromium: apt-get install -y chromium, or set CHROMIUM=/path/to/chromium")
    assert executable is not None
    chromium = playwright.chromium.launch(
        executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=TIMEOUT_MS
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def live_server(server_url: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`studytrack.web.app:create_app()` under gunicorn on a loopback port, with the known sessions stored."""
    url = fresh_database(server_url, settings, "studytrack_dashboard")
    log = tmp_path_factory.mktemp("server") / "gunicorn.log"
    # AUTH_DISABLED: the page's token handling is checked by the headers it sends.
    with gunicorn(url, log, AUTH_DISABLED="true", LOG_LEVEL="warning") as server:
        response = httpx.post(f"{server.url}/api/events/batch", json=SESSIONS, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["inserted"] == len(SESSIONS)
        yield server.url


@dataclasses.dataclass
class Watched:
    page: Page
    base: str
    requests: list[Request]
    problems: list[str]

    def api_calls(self) -> list[Request]:
        return [request for request in self.requests if "/api/events/" in request.url]

    def assert_clean(self, *, allowed: str | None = None) -> None:
        """Only our own server was asked (the page works offline), and nothing failed in the page."""
        offsite = [r.url for r in self.requests if not r.url.startswith((self.base, "blob:"))]
        assert offsite == [], "the dashboard asked other hosts"
        assert [p for p in self.problems if allowed is None or allowed not in p] == []


@contextmanager
def _watching(browser: Browser, base: str, timezone_id: str, init_script: str | None = None) -> Iterator[Watched]:
    """A page in its own browser context (empty localStorage) that records requests, console errors and CSP."""
    context = browser.new_context(
        timezone_id=timezone_id, locale="en-US", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    if init_script is not None:
        context.add_init_script(init_script)
    page = context.new_page()
    requests: list[Request] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request))
    page.on("console", lambda message: _console(message, problems))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    try:
        yield Watched(page, base, requests, problems)
    finally:
        context.close()


@pytest.fixture
def watched(browser: Browser, live_server: str) -> Iterator[Watched]:
    with _watching(browser, live_server, "Europe/Berlin") as page:
        yield page


def _console(message: ConsoleMessage, problems: list[str]) -> None:
    if message.type == "error":
        problems.append(f"console error: {message.text}")


def _chart(page: Page) -> Locator:
    return page.locator("#chart")


def _wait_ready(page: Page, duration: str) -> None:
    page.wait_for_function(
        "d => { const c = document.getElementById('chart').dataset; return c.state === 'ready' && c.duration === d }",
        arg=duration,
    )


def _nonzero_bars(page: Page) -> list[int]:
    """Bars Chart.js laid out with a visible height, per dataset (tag)."""
    return list(
        page.evaluate(
            """() => {
                const chart = Chart.getChart(document.getElementById('chart-canvas'));
                return chart.data.datasets.map((_, i) =>
                    chart.getDatasetMeta(i).data.filter((bar) => Math.abs(bar.base - bar.y) >= 1).length);
            }"""
        )
    )


def _label_count(page: Page) -> int:
    return int(page.evaluate("() => Chart.getChart(document.getElementById('chart-canvas')).data.labels.length"))


def test_dashboard_charts_the_known_sessions_and_redraws_per_duration(watched: Watched, live_server: str) -> None:
    page = watched.page
    response = page.goto(f"{live_server}/dashboard?{RANGE}")
    assert response is not None
    assert response.status == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert page.input_value("#tz") == "Europe/Berlin"  # the browser's own zone by default
    _wait_ready(page, "1 day")

    chart = _chart(page)
    assert chart.get_attribute("data-bucket-count") == "14"
    assert chart.get_attribute("data-series") == "cka,ckad,terraform"
    assert _label_count(page) == 14
    assert _nonzero_bars(page) == [3, 1, 1]  # cka on 6, 8 and 15 January (Berlin), ckad on 6, terraform on 15
    labels = page.evaluate("() => window.studytrackChart.labels")
    assert labels[0] == "Mon, Jan 6"
    assert labels[-1] == "Sun, Jan 19"

    assert page.inner_text("#total-time") == "2h 50m"
    assert page.inner_text("#total-sessions") == "5 sessions · 170 minutes"
    rows = page.locator("#by-tag tbody tr")
    assert [rows.nth(i).inner_text().split("\t") for i in range(rows.count())] == [
        ["cka", "1h 45m", "3", "62%"],
        ["ckad", "45m", "1", "26%"],
        ["terraform", "20m", "1", "12%"],
    ]
    assert page.is_hidden("#error")

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 10_000

    page.select_option("#duration", "1 week")
    _wait_ready(page, "1 week")
    assert chart.get_attribute("data-bucket-count") == "2"
    assert _label_count(page) == 2
    assert _nonzero_bars(page) == [2, 1, 1]
    assert page.evaluate("() => window.studytrackChart.labels") == ["Jan 6", "Jan 13"]
    assert page.inner_text("#total-time") == "2h 50m"

    page.select_option("#duration", "1 month")
    _wait_ready(page, "1 month")
    assert chart.get_attribute("data-bucket-count") == "1"
    assert page.evaluate("() => window.studytrackChart.labels") == ["Jan 2025"]
    assert "duration=1+month" in page.url  # the controls are kept in the address, to share or reload

    # Every request asked the API for filled buckets of the chosen range, in the browser's zone.
    calls = watched.api_calls()
    assert len(calls) == 3
    assert all("fill=true" in r.url and "tz=Europe%2FBerlin" in r.url and "end=2025-01-20" in r.url for r in calls)
    watched.assert_clean()


def test_tags_and_timezone_controls_filter_and_rebucket(watched: Watched, live_server: str) -> None:
    page = watched.page
    page.goto(f"{live_server}/dashboard?{RANGE}")
    _wait_ready(page, "1 day")

    page.fill("#tags", "CKA, terraform")
    page.press("#tags", "Enter")
    page.wait_for_function("() => document.getElementById('chart').dataset.series === 'cka,terraform'")
    _wait_ready(page, "1 day")
    assert page.inner_text("#total-time") == "2h 5m"

    page.fill("#tz", "UTC")
    page.press("#tz", "Enter")
    page.wait_for_function("() => window.studytrackChart && window.studytrackChart.tz === 'UTC'")
    _wait_ready(page, "1 day")
    # In UTC the 23:30 session of 19 January is inside the range.
    assert page.inner_text("#total-time") == "2h 55m"
    watched.assert_clean()


def _browser_reports_zone(zone: str | None) -> str:
    """An init script: `Intl` reports `zone` (None: no zone) as the browser's own, as some browsers do."""
    return f"""
        const resolved = Intl.DateTimeFormat.prototype.resolvedOptions;
        Intl.DateTimeFormat.prototype.resolvedOptions = function () {{
            return {{ ...resolved.call(this), timeZone: {json.dumps(zone) if zone else "undefined"} }};
        }};
    """


# Chromium names this zone by ICU's older id; the server knows both names of it.
KOLKATA = ("Asia/Kolkata", "Asia/Calcutta")


def test_the_dashboard_charts_in_the_browsers_time_zone(browser: Browser, live_server: str) -> None:
    with _watching(browser, live_server, "Asia/Kolkata") as watched:
        page = watched.page
        page.goto(f"{live_server}/dashboard?{RANGE}")
        _wait_ready(page, "1 day")
        zone = page.input_value("#tz")
        assert zone in KOLKATA
        assert parse_qs(urlsplit(page.url).query)["tz"] == [zone]  # kept in the address, like the other controls
        assert [parse_qs(urlsplit(r.url).query)["tz"] for r in watched.api_calls()] == [[zone]]
        # 23:30 UTC on 14 January is 05:00 on the 15th in Kolkata, on 19 January the 20th: outside the range.
        assert page.inner_text("#total-time") == "2h 50m"
        watched.assert_clean()


def test_a_zone_in_the_address_wins_over_the_browsers(browser: Browser, live_server: str) -> None:
    with _watching(browser, live_server, "Asia/Kolkata") as watched:
        page = watched.page
        page.goto(f"{live_server}/dashboard?{RANGE}&tz=UTC")
        _wait_ready(page, "1 day")
        assert page.input_value("#tz") == "UTC"
        assert [parse_qs(urlsplit(r.url).query)["tz"] for r in watched.api_calls()] == [["UTC"]]
        assert page.inner_text("#total-time") == "3h 40m"  # in UTC the 23:30 session of 19 January is inside
        watched.assert_clean()


@pytest.mark.parametrize(
    ("reported", "asked"), [("Mars/Olympus", [["Mars/Olympus"], ["UTC"]]), (None, [["UTC"]])], ids=["unknown", "none"]
)
def test_a_browser_zone_the_server_does_not_know_or_none_falls_back_to_utc(
    browser: Browser, live_server: str, reported: str | None, asked: list[list[str]]
) -> None:
    with _watching(browser, live_server, "Asia/Kolkata", _browser_reports_zone(reported)) as watched:
        page = watched.page
        page.goto(f"{live_server}/dashboard?{RANGE}")
        _wait_ready(page, "1 day")
        assert page.input_value("#tz") == "UTC"
        assert [parse_qs(urlsplit(r.url).query)["tz"] for r in watched.api_calls()] == asked
        assert page.inner_text("#total-time") == "3h 40m"
        assert page.is_hidden("#error")
        watched.assert_clean(allowed="status of 422")  # the browser logs the refused zone's answer itself


def test_api_errors_are_shown_in_the_page(watched: Watched, live_server: str) -> None:
    page = watched.page
    page.goto(f"{live_server}/dashboard?{RANGE}")
    _wait_ready(page, "1 day")
    page.fill("#tz", "Mars/Olympus")
    page.press("#tz", "Enter")
    page.wait_for_function("() => document.getElementById('chart').dataset.state === 'error'")
    message = page.inner_text("#error")
    assert "tz: must be an IANA time zone name" in message
    assert "(HTTP 422, validation_error)" in message
    watched.assert_clean(allowed="status of 422")  # the browser logs the 422 response itself


def test_the_api_token_is_taken_from_the_url_once_and_sent_as_a_bearer_header(
    watched: Watched, live_server: str
) -> None:
    page = watched.page
    page.goto(f"{live_server}/dashboard?token=s3cret-token&{RANGE}")
    _wait_ready(page, "1 day")
    assert "token" not in page.url
    assert page.evaluate("() => localStorage.getItem('studytrack.token')") == "s3cret-token"
    assert page.inner_text("#token-state") == "set"
    assert [r.headers.get("authorization") for r in watched.api_calls()] == ["Bearer s3cret-token"]

    with page.expect_download() as download:
        page.click("#download-csv")
    csv_path = download.value.path()
    assert download.value.suggested_filename == "studytrack-buckets.csv"
    assert Path(csv_path).read_bytes().startswith(b"bucket,tag,minutes,count,avg_minutes\r\n2025-01-06T00:00:00+01:00,")
    assert watched.requests[-1].headers.get("authorization") == "Bearer s3cret-token"

    page.click("#token-state")  # open the token panel
    page.click("#token-clear")
    page.wait_for_function("() => document.getElementById('token-state').textContent === 'not set'")
    _wait_ready(page, "1 day")
    assert "authorization" not in watched.api_calls()[-1].headers
    watched.assert_clean()


def test_a_token_in_the_fragment_never_reaches_the_server_and_is_kept(watched: Watched, live_server: str) -> None:
    page = watched.page
    page.goto(f"{live_server}/dashboard?{RANGE}#token=fragment-token")
    _wait_ready(page, "1 day")
    assert "token" not in page.url
    assert page.evaluate("() => localStorage.getItem('studytrack.token')") == "fragment-token"
    assert [r.headers.get("authorization") for r in watched.api_calls()] == ["Bearer fragment-token"]
    watched.assert_clean()


# ReDoc's "API docs by Redocly" attribution logo is built into its bundle; it drops the image when unreachable.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@pytest.mark.parametrize(
    ("path", "title", "outside"), [("/docs", ".swagger-ui .info .title", []), ("/redoc", "h1", [REDOC_LOGO])]
)
def test_api_docs_render_with_no_other_host_reachable(
    watched: Watched, live_server: str, path: str, title: str, outside: list[str]
) -> None:
    page = watched.page
    page.route(lambda url: not url.startswith(live_server), lambda route: route.abort())  # offline
    response = page.goto(f"{live_server}{path}")
    assert response is not None
    assert response.status == 200
    assert "studytrack" in page.locator(title).first.inner_text()
    page.wait_for_load_state("networkidle")
    assert {r.url for r in watched.requests if not r.url.startswith(live_server)} <= set(outside)
    assert [p for p in watched.problems if not p.startswith("console error: Failed to load resource")] == []


def test_static_files_are_served_with_the_vendored_chart_library(live_server: str) -> None:
    page = httpx.get(f"{live_server}/dashboard", timeout=10)
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "static/vendor/chart.umd.min.js" in page.text
    library = httpx.get(f"{live_server}/static/vendor/chart.umd.min.js", timeout=10)
    assert library.status_code == 200
    assert library.text.startswith("/*!\n * Chart.js v4.6.1")
    assert httpx.get(f"{live_server}/static/nope.js", timeout=10).status_code == 404

"""`/docs` (Swagger UI) and `/redoc` work offline: every file they load comes from the service itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


class _References(HTMLParser):
    """Every URL a page's tags load: `src`, `href` and ReDoc's `spec-url`."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def _references(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls + re.findall(r"\burl: '([^']+)'", html)  # Swagger UI's inline `url: '/openapi.json'`


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_its_assets_from_the_service(app_client: TestClient, page: str) -> None:
    anonymous = {"Authorization": ""}  # the docs are open, like /healthz: no token needed to read them
    answer = app_client.get(page, headers=anonymous)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert "://" not in answer.text, "no absolute URL: no CDN, no web fonts"
    urls = _references(answer.text)
    assert any(url.endswith(".js") for url in urls)
    assert "/openapi.json" in urls
    for url in urls:
        assert url.startswith("/"), f"{url} is not on this service"
        assert not url.startswith("//"), f"{url} is not on this service"
        asset = app_client.get(url, headers=anonymous)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(CONTENT_TYPES[url[url.rindex(".") :]]), url
        assert int(asset.headers["content-length"]) > 0, url

"""What the server sends for the UI: index.html on every page path with no token needed,
the static files with a strict CSP, and nothing that shadows or leaks beyond them."""

from __future__ import annotations

import re

import httpx
import pytest

from auditkeep.server.ui import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.conftest import ServerProcess


@pytest.mark.parametrize("path", ["/", "/signin", "/search", "/events/evt-1",
                                  "/dashboards", "/dashboards/oncall"])
def test_every_page_path_is_index_html_without_a_token(ui_server: ServerProcess,
                                                        path: str) -> None:
    r = httpx.get(ui_server.url + path, params={"query": "action:x"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/app.js">' in r.text
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-cache"


def test_the_policy_allows_only_own_scripts() -> None:
    csp = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    # and no page relies on inline script or style
    for html in STATIC_DIR.rglob("*.html"):
        text = html.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), html
        assert "style=" not in text and "<style" not in text, html


def test_static_files_have_types_and_validators(ui_server: ServerProcess) -> None:
    js = httpx.get(ui_server.url + "/static/js/app.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert js.headers["x-content-type-options"] == "nosniff"
    again = httpx.get(ui_server.url + "/static/js/app.js",
                      headers={"If-None-Match": js.headers["etag"]})
    assert again.status_code == 304
    assert httpx.get(ui_server.url + "/static/css/app.css").headers["content-type"].startswith(
        "text/css")
    assert httpx.get(ui_server.url + "/static/vendor/noble.js").status_code == 200


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/../server/ui.py",
                                  "/static/%2e%2e/%2e%2e/server/ui.py", "/events/a/b", "/nope"])
def test_unknown_paths_are_404_problems(ui_server: ServerProcess, path: str) -> None:
    r = httpx.get(ui_server.url + path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


def test_pages_take_only_get(ui_server: ServerProcess) -> None:
    assert httpx.post(ui_server.url + "/search").status_code == 405
    assert httpx.head(ui_server.url + "/search").status_code == 200


def test_the_api_keeps_its_routes_and_needs_its_token(ui_server: ServerProcess) -> None:
    assert httpx.get(ui_server.url + "/v1/status").status_code == 401
    assert httpx.post(ui_server.url + "/v1/events/x").status_code == 405
    assert httpx.get(ui_server.url + "/openapi.json").json()["openapi"].startswith("3.1")


def test_no_module_turns_strings_into_markup_or_code() -> None:
    """Records are rendered with textContent and DOM calls only (dom.js)."""
    sinks = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
    own = [p for p in STATIC_DIR.rglob("*.js") if "vendor" not in p.parts]
    assert len(own) > 10
    for path in own:
        assert not sinks.search(path.read_text()), path

"""Search, dashboards and context in a real browser: query errors at their column, the
histogram zoom by dragging, paging, live tail, columns, saved searches."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ServerProcess
from tests.ui.conftest import BrowserErrors, emit, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

XSS = "<img src=x onerror=\"window.__xss=1\">"
NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def seeded(ui_server: ServerProcess) -> dict[str, Any]:
    # 60 logins spread over the last 10 hours, and 5 deletes in the last hour.
    emit(ui_server, [{"id": f"login-{i}", "action": "users.login", "time": stamp(10 * i + 1),
                      "outcome": "failure" if i % 3 else "success", "reason": XSS,
                      "actor": {"id": f"user{i % 4}", "type": "user"}} for i in range(60)])
    emit(ui_server, [{"id": f"delete-{i}", "action": "orders.delete", "time": stamp(5 * i + 2),
                      "outcome": "success", "actor": {"id": "alice", "type": "user"},
                      "resource": {"type": "order", "id": str(i)}, "request_id": "req-1"}
                     for i in range(5)])
    with ui_server.client() as c:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = c.get("/v1/search", params={"since": "-30d", "limit": 1000}).json()
            if len(found["events"]) >= 65:
                break
            time.sleep(0.1)
    return {}


def query_of(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def rows(page: Page) -> int:
    return page.locator("#results tbody tr").count()


def test_search_zoom_page_and_columns(page: Page, ui_server: ServerProcess,
                                      seeded: dict[str, Any], expect: Any, errors: BrowserErrors,
                                      tmp_path: Path) -> None:
    sign_in(page, ui_server, "/search?since=-24h")
    page.wait_for_selector("#results tbody tr")
    page.wait_for_selector("#histogram .bar")
    assert rows(page) == 50
    page.click("#load-more")
    expect(page.locator("#results tbody tr")).to_have_count(65)
    assert page.is_hidden("#load-more")
    page.screenshot(path=tmp_path / "search.png", full_page=True)

    histogram_before = page.get_attribute("#histogram", "aria-label")
    page.locator("#histogram").scroll_into_view_if_needed()
    box = page.locator("#histogram").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.90, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.95, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.99, y, steps=5)
    page.mouse.up()
    page.wait_for_url("**until=*")
    q = query_of(page)
    since, until = datetime.fromisoformat(q["since"]), datetime.fromisoformat(q["until"])
    assert timedelta(minutes=20) < until - since < timedelta(hours=3)
    expect(page.locator("#summary")).not_to_contain_text("65 events")
    expect(page.locator("#summary")).to_contain_text("shown")
    assert 0 < rows(page) < 65
    page.wait_for_selector("#histogram .bar")
    # other bars: fewer events, in finer buckets
    assert page.get_attribute("#histogram", "aria-label") != histogram_before
    page.screenshot(path=tmp_path / "search-zoomed.png", full_page=True)
    page.go_back()
    expect(page.locator("#results tbody tr")).to_have_count(50)

    page.click("[aria-controls=column-picker]")
    page.check("#column-picker input[value=reason]")
    page.keyboard.press("Escape")
    page.wait_for_selector("#results th:has-text('Reason')")
    assert XSS in page.inner_text("#results tbody tr:first-child")
    assert page.locator("#results img").count() == 0
    page.reload()
    page.wait_for_selector("#results th:has-text('Reason')")  # remembered
    assert errors.unexpected() == []


def test_a_query_error_is_shown_at_its_column(page: Page, ui_server: ServerProcess,
                                             seeded: dict[str, Any], expect: Any) -> None:
    sign_in(page, ui_server, "/search")
    page.fill("#query", "action:users.login AND (")
    page.press("#query", "Enter")
    page.wait_for_selector("#query-error")
    column = page.get_attribute("#query-error", "data-column")
    assert column and int(column) >= 20
    assert page.get_attribute("#query", "aria-invalid") == "true"
    assert "^" in page.inner_text("#query-error pre")

    page.fill("#query", "action:orders.delete")
    page.press("#query", "Enter")
    expect(page.locator("#results tbody tr")).to_have_count(5)
    assert page.locator("#query-error").count() == 0
    assert query_of(page)["query"] == "action:orders.delete"


def test_live_tail_prepends_new_events(page: Page, ui_server: ServerProcess,
                                       seeded: dict[str, Any], expect: Any) -> None:
    sign_in(page, ui_server, "/search?query=action%3Aorders.*&since=-1h")
    expect(page.locator("#results tbody tr")).to_have_count(5)
    page.click("#tail")
    assert page.get_attribute("#tail", "aria-pressed") == "true"
    emit(ui_server, [{"id": "delete-live", "action": "orders.delete", "outcome": "success",
                      "actor": {"id": "alice", "type": "user"}}])
    page.wait_for_selector('#results tbody tr:first-child[data-id="delete-live"]', timeout=15_000)
    page.click("#tail")
    assert page.get_attribute("#tail", "aria-pressed") == "false"


def test_a_saved_search_is_listed_and_opens_by_name(page: Page, ui_server: ServerProcess,
                                                    seeded: dict[str, Any], expect: Any) -> None:
    sign_in(page, ui_server, "/search?query=actor%3Aalice&since=-7d")
    page.wait_for_selector("#results tbody tr")
    page.click("[aria-controls=save-popover]")
    page.fill("#save-name", "alice-week")
    page.press("#save-name", "Enter")
    page.click("#saved-list a:has-text('alice-week')")
    page.wait_for_url("**/search?saved=alice-week")
    expect(page.locator("#query")).to_have_value("actor:alice")
    assert page.input_value("#range") == "-7d"


def test_the_context_panel_lists_neighbours(page: Page, ui_server: ServerProcess,
                                            seeded: dict[str, Any]) -> None:
    sign_in(page, ui_server, "/events/delete-2")
    page.wait_for_selector(".context-list li.current")
    assert page.locator(".context-list li").count() >= 5  # the same actor: alice
    page.check("input[name=context-by][value=request]")
    page.wait_for_selector(".context-list a")


@pytest.mark.parametrize("board", ["executive", "oncall", "debug"])
def test_dashboards_draw_their_panels(page: Page, ui_server: ServerProcess,
                                      seeded: dict[str, Any], board: str,
                                      errors: BrowserErrors, tmp_path: Path) -> None:
    sign_in(page, ui_server, f"/dashboards/{board}")
    page.wait_for_selector("[data-panel]")
    assert page.locator(".status-error").count() == 0
    page.screenshot(path=tmp_path / f"dashboard-{board}.png", full_page=True)
    assert errors.unexpected() == []


def _poll_of(url: str) -> str | None:
    return parse_qs(urlsplit(url).query).get("poll", [None])[0]


def test_each_live_tail_polls_as_one_session(page: Page, ui_server: ServerProcess,
                                             seeded: dict[str, Any]) -> None:
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/v1/search?" in r.url else None)
    sign_in(page, ui_server, "/search?query=action%3Aorders.*&since=-1h")
    page.wait_for_selector("#results tbody tr")
    assert [_poll_of(u) for u in searches] == [None]  # the search itself is a plain read
    for _ in range(2):
        with page.expect_request(lambda r: _poll_of(r.url) is not None):
            page.click("#tail")  # the first poll goes out at once
        with page.expect_request(lambda r: _poll_of(r.url) is not None, timeout=15_000):
            pass  # and the next one after the interval
        page.click("#tail")
    first, second = ([_poll_of(u) for u in searches[1:]][i * 2 : i * 2 + 2] for i in (0, 1))
    assert first[0] == first[1] and second[0] == second[1]  # one session per live tail
    assert first[0] != second[0]
    assert all(len(s or "") == 32 for s in first + second)
    assert not [u for u in searches if ui_server.admin_token in u]  # never the token


def test_dashboard_refreshes_poll_as_one_session(page: Page, ui_server: ServerProcess,
                                                 seeded: dict[str, Any]) -> None:
    loads: list[str] = []
    page.on("request", lambda r: loads.append(r.url) if "/v1/dashboards/" in r.url else None)
    sign_in(page, ui_server, "/dashboards/oncall")
    page.wait_for_selector("[data-panel]")
    for _ in range(2):
        with page.expect_request(lambda r: _poll_of(r.url) is not None, timeout=15_000):
            pass  # the 10 s auto-refresh
    sessions = [_poll_of(u) for u in loads]
    assert sessions[0] is None  # the page's own load is a plain read
    assert sessions[1] is not None and sessions[1] == sessions[2]

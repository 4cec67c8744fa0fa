"""The Alerts page and an alert's page in a real browser, on a server whose rules raise
alerts for the events sent here: the list, its filters in the address, paging, the
links to the matching events and to the alert's own record, Acknowledge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.cli.test_alerts_cli import (
    FAILED_LOGIN,
    delete,
    post_events,
    read_token,
    start_alert_server,
    wait_alerts,
)
from tests.conftest import ServerProcess
from tests.ui.conftest import BrowserErrors, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

DELETES = 55  # more than one page (50) of the list
XSS = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"


@pytest.fixture(scope="module")
def alerts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_alert_server(tmp_path_factory.mktemp("alerts-ui"))
    post_events(s, [delete(f"o{i}", f"evt-del-{i}") for i in range(DELETES)])
    post_events(s, [FAILED_LOGIN, delete(XSS, "evt-del-xss")])
    wait_alerts(s, DELETES + 2)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def by_group(alerts_server: ServerProcess) -> dict[str, dict[str, Any]]:
    """Each alert's summary by its group's value (the failed login's by its rule)."""
    with alerts_server.client() as c:
        found = c.get("/v1/alerts", params={"limit": 500}).json()["alerts"]
    return {next(iter(a["group"].values()), a["rule"]): a for a in found}


def rows(page: Page) -> int:
    return page.locator("#alerts tbody tr").count()


def test_the_nav_leads_to_the_alerts_and_load_more_pages_on(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]],
        errors: BrowserErrors, expect: Any, tmp_path: Path) -> None:
    sign_in(page, alerts_server, "/search")
    page.click("nav a:has-text('Alerts')")
    page.wait_for_url("**/alerts")
    expect(page.locator("nav a:has-text('Alerts')")).to_have_attribute("aria-current", "page")
    expect(page.locator("#alerts tbody tr")).to_have_count(50)
    expect(page.locator("#summary")).to_have_text("50 alerts shown")
    newest = {by_group[k]["id"] for k in ("failed-logins", XSS)}  # the second batch
    first = page.locator("#alerts tbody tr").first
    assert first.get_attribute("data-id") in newest
    assert "Failed login" in page.inner_text("#alerts") and "Order deleted" in page.inner_text(
        "#alerts")
    page.screenshot(path=tmp_path / "alerts.png", full_page=True)
    page.click("#load-more")
    expect(page.locator("#alerts tbody tr")).to_have_count(DELETES + 2)
    expect(page.locator("#load-more")).to_be_hidden()
    shown = page.eval_on_selector_all("#alerts tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert sorted(shown) == sorted(a["id"] for a in by_group.values())
    assert errors.unexpected() == []


def test_filters_live_in_the_address_and_apply_at_once(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]],
        expect: Any) -> None:
    sign_in(page, alerts_server, "/alerts")
    expect(page.locator("#alerts tbody tr")).to_have_count(50)
    page.select_option("#filter-level", "medium")
    page.wait_for_url("**/alerts?level=medium")
    expect(page.locator("#alerts tbody tr")).to_have_count(1)
    assert page.get_attribute("#alerts tbody tr", "data-id") == by_group["failed-logins"]["id"]

    page.select_option("#filter-level", "")
    expect(page.locator("#filter-rule option[value=deletes]")).to_have_count(1)  # from /v1/rules
    page.select_option("#filter-rule", "failed-logins")
    page.wait_for_url("**/alerts?rule=failed-logins")
    expect(page.locator("#alerts tbody tr")).to_have_count(1)

    page.select_option("#filter-level", "critical")
    page.wait_for_url("**/alerts?level=critical&rule=failed-logins")
    expect(page.locator("#summary")).to_have_text("No alerts match.")

    page.go_back()  # the address is the state: back is the previous filter
    page.wait_for_url("**/alerts?rule=failed-logins")
    page.goto(alerts_server.url + "/alerts?level=high&status=open")
    expect(page.locator("#filter-level")).to_have_value("high")
    expect(page.locator("#filter-status")).to_have_value("open")
    expect(page.locator("#alerts tbody tr")).to_have_count(50)


def test_an_alert_links_its_events_and_its_own_record(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]],
        errors: BrowserErrors, expect: Any, tmp_path: Path) -> None:
    sign_in(page, alerts_server, "/alerts?rule=deletes")
    row = page.locator("#alerts tbody tr").first
    a = next(x for x in by_group.values() if x["id"] == row.get_attribute("data-id"))
    group = a["group"]["resource.id"]
    row.locator("a").click()
    page.wait_for_url(f"**/alerts/{a['id']}")
    expect(page.locator("h1")).to_have_text("Order deleted")
    assert page.inner_text("#fields [data-field=rule] td") == "deletes"
    assert page.inner_text("#fields [data-field=level] td") == "high"
    assert "resource.id" in page.inner_text("#group") and group in page.inner_text("#group")
    assert "Not routed to any sink." in page.inner_text("#deliveries")
    page.screenshot(path=tmp_path / "alert.png", full_page=True)

    event_id = "evt-del-xss" if group == XSS else f"evt-del-{group[1:]}"
    page.click(f"#events a:has-text('{event_id}')")
    page.wait_for_url(f"**/events/{event_id}")
    expect(page.locator("h1")).to_have_text("orders.delete")
    page.go_back()
    with alerts_server.client() as c:
        logged = c.get(f"/v1/alerts/{a['id']}").json()["logged_seq"]
    expect(page.locator("#alert-record")).to_contain_text(f"seq {logged} of log default")
    page.click("#alert-record")
    page.wait_for_url(f"**/events/{a['id']}")
    expect(page.locator("h1")).to_have_text("auditkeep.alert.fired")
    page.click("#verify")  # the alert's record is proved like any other event
    page.wait_for_selector("#verdict[data-result=pass]")
    assert f"seq {logged} " in page.inner_text(".event-head .meta")
    assert errors.unexpected() == []


def test_acknowledge_with_a_note(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]],
        expect: Any) -> None:
    a = by_group["o3"]
    sign_in(page, alerts_server, f"/alerts/{a['id']}")
    expect(page.locator(".event-head .badge.alert-open")).to_have_text("open")
    page.fill("#ack-note", "restored from backup")
    page.click("#ack")
    expect(page.locator("#acked")).to_contain_text("Acknowledged by ")
    expect(page.locator("#acked")).to_contain_text("restored from backup")
    expect(page.locator(".event-head .badge.alert-acked")).to_have_text("acked")
    assert page.locator("#ack").count() == 0
    page.reload()
    expect(page.locator("#fields [data-field=status] td")).to_have_text("acked")
    page.goto(alerts_server.url + "/alerts?status=acked")
    expect(page.locator(f"#alerts tr[data-id='{a['id']}']")).to_have_count(1)
    assert "acked" in page.inner_text(f"#alerts tr[data-id='{a['id']}']")


def test_a_read_token_sees_alerts_but_may_not_acknowledge(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]],
        errors: BrowserErrors, expect: Any) -> None:
    a = by_group["o4"]
    sign_in(page, alerts_server, f"/alerts/{a['id']}", token=read_token(alerts_server))
    page.click("#ack")
    expect(page.locator("#ack-feedback [role=alert]")).to_contain_text("audit scope")
    expect(page.locator("#ack")).to_be_enabled()
    with alerts_server.client() as c:
        assert c.get(f"/v1/alerts/{a['id']}").json()["status"] == "open"
    assert errors.unexpected() == []


def test_markup_in_a_group_value_is_shown_as_text(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]]) -> None:
    sign_in(page, alerts_server, "/alerts?rule=deletes")
    page.wait_for_selector("#alerts tbody tr")
    page.click("#load-more")
    page.wait_for_selector(f"#alerts tr[data-id='{by_group[XSS]['id']}']")
    assert XSS in page.inner_text("#alerts")
    page.goto(alerts_server.url + f"/alerts/{by_group[XSS]['id']}")
    page.wait_for_selector("#group td")
    assert XSS in page.inner_text("#group")
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert page.evaluate("window.__xss") is None


def test_an_unknown_alert_says_so(page: Page, alerts_server: ServerProcess,
                                  expect: Any) -> None:
    sign_in(page, alerts_server, "/alerts/no-such-alert")
    expect(page.locator("main [role=alert]")).to_have_text(
        "No alert with id no-such-alert in this tenant.")


def test_a_narrow_screen_has_no_sideways_scroll(
        page: Page, alerts_server: ServerProcess, by_group: dict[str, dict[str, Any]]) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, alerts_server, "/alerts")
    page.wait_for_selector("#alerts tbody tr")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(alerts_server.url + f"/alerts/{by_group['o1']['id']}")
    page.wait_for_selector("#events a")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


@pytest.mark.parametrize("path", ["/alerts", "/alerts/some-id"])
def test_the_alert_paths_are_index_html_without_a_token(alerts_server: ServerProcess,
                                                        path: str) -> None:
    r = httpx.get(alerts_server.url + path, params={"status": "open"})
    assert r.status_code == 200
    assert '<script type="module" src="/static/js/app.js">' in r.text

"""The pages in a real browser: sign in and out, tenants, the event page with a source's
raw object, markup in records shown as text, a narrow screen, the keyboard."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from auditkeep.log.note import Signer
from tests.conftest import ServerProcess
from tests.ui.conftest import BrowserErrors, emit, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

K8S_LIST = (Path(__file__).parent.parent / "data" / "k8s" / "eventlist_v1_from_falco.json"
            ).read_bytes()
XSS = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=2</script>"


@pytest.fixture(scope="module")
def seeded(ui_server: ServerProcess) -> dict[str, Any]:
    emit(ui_server, [{"id": "evt-plain", "action": "orders.delete", "outcome": "success",
                      "actor": {"id": "alice", "type": "user"},
                      "resource": {"type": "order", "id": "42"}}])
    emit(ui_server, [{"id": "evt-xss", "action": "notes.create", "outcome": "failure",
                      "actor": {"id": "mallory", "type": "user", "name": XSS},
                      "reason": XSS, "resource": {"type": "note", "id": "n1", "name": XSS},
                      "metadata": {"comment": XSS, XSS: "key"}}])
    emit(ui_server, [{"id": "evt-acme", "action": "users.login", "outcome": "success",
                      "actor": {"id": "bob", "type": "user"}}], tenant="acme")
    with ui_server.client() as c:
        r = c.post("/v1/sources/k8s", content=K8S_LIST,
                   headers={"Content-Type": "application/json"})
        r.raise_for_status()
        k8s_id = r.json()["receipts"][0]["id"]
    bound = subprocess.run(
        [sys.executable, "-m", "auditkeep", "tokens", "create", "--data",
         str(ui_server.data.root), "--tenant", "acme", "--scope", "read"],
        check=True, capture_output=True, text=True).stdout.strip()
    return {"k8s": k8s_id, "acme_token": bound}


def test_a_wrong_token_is_refused_and_a_good_one_kept_only_for_the_tab(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any], errors: BrowserErrors,
        tmp_path: Path) -> None:
    page.goto(ui_server.url + "/events/evt-plain")
    page.screenshot(path=tmp_path / "signin.png")
    page.fill("#token", "ak_not-a-token")
    page.click("button[type=submit]")
    page.wait_for_selector("text=does not accept this token")
    page.fill("#token", ui_server.admin_token)
    page.press("#token", "Enter")
    page.wait_for_selector("h1:has-text('orders.delete')")  # the page asked for first
    assert ui_server.admin_token not in page.url
    assert page.evaluate("sessionStorage.getItem('auditkeep.token')") == ui_server.admin_token
    assert ui_server.admin_token not in page.evaluate("JSON.stringify(localStorage)")

    page.click("#sign-out")
    page.wait_for_selector("#token")
    assert page.evaluate("sessionStorage.getItem('auditkeep.token')") is None
    assert errors.unexpected() == []


def test_an_admin_switches_tenants_and_a_bound_token_cannot(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any]) -> None:
    sign_in(page, ui_server, "/events/evt-acme")
    page.wait_for_selector("text=No event with id evt-acme")  # admin tokens start in default
    assert page.eval_on_selector_all("#tenant option", "os => os.map(o => o.value)") == [
        "acme", "default"]
    page.select_option("#tenant", "acme")
    page.wait_for_selector("h1:has-text('users.login')")
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")

    page.click("#sign-out")
    page.fill("#token", seeded["acme_token"])
    page.click("button[type=submit]")
    page.wait_for_selector("#sign-out")
    page.goto(ui_server.url + "/events/evt-acme")
    page.wait_for_selector("h1:has-text('users.login')")
    assert page.locator("#tenant").count() == 0
    assert page.inner_text(".tenant") == "acme"
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")


def test_a_source_event_shows_its_raw_object_and_verify_checks_it(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any], tmp_path: Path) -> None:
    sign_in(page, ui_server, f"/events/{seeded['k8s']}")
    page.wait_for_selector("#raw pre")
    assert '"auditID"' in page.inner_text("#raw pre")
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")
    assert page.get_attribute('[data-step="raw"]', "data-result") == "pass"
    page.screenshot(path=tmp_path / "event-source.png", full_page=True)


def test_markup_in_a_record_is_shown_as_text(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any], errors: BrowserErrors,
        tmp_path: Path) -> None:
    sign_in(page, ui_server, "/events/evt-xss")
    page.wait_for_selector("h1:has-text('notes.create')")
    page.wait_for_selector("#verify")
    fields = page.inner_text("#fields")
    assert XSS in fields  # metadata.comment, reason, resource.name, actor.name
    assert f"metadata.{XSS}" in fields
    assert '"comment": "<img src=x onerror=' in page.inner_text("#json pre")
    assert page.locator("main img").count() == 0
    assert page.locator("main script").count() == 0
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=tmp_path / "event-xss.png", full_page=True)
    assert errors.unexpected() == []


def test_a_narrow_screen_has_no_sideways_scroll(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any], tmp_path: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, ui_server, "/events/evt-plain")
    page.wait_for_selector("h1:has-text('orders.delete')")
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "event-narrow.png", full_page=True)
    page.goto(ui_server.url + "/search")
    page.wait_for_selector("#query")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=tmp_path / "search-narrow.png", full_page=True)


def test_the_keyboard_reaches_and_runs_the_query(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any]) -> None:
    sign_in(page, ui_server, "/search")
    page.wait_for_selector("#query")
    page.evaluate("document.activeElement.blur()")
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "query":
            break
    assert page.evaluate("document.activeElement.id") == "query"
    page.keyboard.type("action:orders.delete")
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?query=action%3Aorders.delete*")

    page.keyboard.press("Tab")  # to the help button
    page.keyboard.press("Enter")
    page.wait_for_selector("#query-help:not([hidden])")
    page.keyboard.press("Escape")
    page.wait_for_selector("#query-help[hidden]", state="attached")

    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "query"


def test_a_pinned_key_is_required_from_then_on(
        page: Page, ui_server: ServerProcess, seeded: dict[str, Any]) -> None:
    sign_in(page, ui_server, "/events/evt-plain")
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")
    assert "not pinned" in page.inner_text('[data-step="signature"]')
    page.click("#pin-key")
    page.wait_for_selector("text=Unpin key")
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=pass]")
    assert "pinned in this browser" in page.inner_text('[data-step="signature"]')

    # Another key under the same name, as a server forging checkpoints would publish.
    origin = (page.text_content("#verify-panel pre.note") or "").split("\n")[0]
    impostor = Signer.generate(origin).verifier().to_string()
    page.evaluate("""(pin) => localStorage.setItem('auditkeep.pinnedKeys',
                     JSON.stringify({[pin[0]]: pin[1]}))""", [origin, impostor])
    page.click("#verify")
    page.wait_for_selector("#verdict[data-result=fail]")
    assert page.get_attribute('[data-step="signature"]', "data-result") == "fail"
    assert "not the key pinned" in page.inner_text('[data-step="signature"]')

"""Verify in the browser: every step passes on an honest log, with WebCrypto and with the
bundled @noble code, and fails at the leaf and root once the stored entry is edited."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, start_server
from tests.log.tamper import Attacker
from tests.ui.conftest import BrowserErrors, emit, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

EVENT = {"id": "evt-refund-1", "action": "invoices.refund",
         "actor": {"id": "carol", "type": "user", "email": "carol@example.com", "ip": "10.0.0.7"},
         "outcome": "success", "resource": {"type": "invoice", "id": "INV-7"},
         "metadata": {"amount": 120.5}}
STEPS = ("leaf", "fields", "checkpoint", "root", "signature")


def results(page: Page) -> dict[str, str]:
    page.wait_for_selector("#verdict[data-result=pass], #verdict[data-result=fail]")
    return {step: page.get_attribute(f'[data-step="{step}"]', "data-result") or ""
            for step in STEPS}


def verify(page: Page) -> dict[str, str]:
    page.click("#verify")
    return results(page)


@pytest.fixture
def server(tmp_path: Path) -> ServerProcess:
    s = start_server(DataDir(tmp_path / "data"))
    emit(s, [{"action": "orders.create", "actor": {"id": f"u{i}", "type": "user"},
              "outcome": "success"} for i in range(6)])
    emit(s, [EVENT])
    emit(s, [{"action": "orders.create", "actor": {"id": "later", "type": "user"},
              "outcome": "success"} for _ in range(4)])
    return s


def test_every_step_passes_then_an_edited_entry_fails(
        server: ServerProcess, page: Page, errors: BrowserErrors, tmp_path: Path) -> None:
    try:
        sign_in(page, server, f"/events/{EVENT['id']}")
        page.wait_for_selector("h1:has-text('invoices.refund')")
        assert verify(page) == dict.fromkeys(STEPS, "pass")
        assert page.get_attribute("#crypto-engine", "data-engine") == "WebCrypto"
        assert page.get_attribute("#verdict", "data-result") == "pass"
        # The personal fields are commitments in the entry: named, not compared.
        assert "actor/email" in page.inner_text('[data-step="fields"]')
        page.screenshot(path=tmp_path / "event-verified.png", full_page=True)

        page.goto(f"{server.url}/events/{EVENT['id']}?crypto=noble")
        assert verify(page) == dict.fromkeys(STEPS, "pass")
        assert page.get_attribute("#crypto-engine", "data-engine") == "noble"
        page.screenshot(path=tmp_path / "event-verified-noble.png", full_page=True)
        assert errors.unexpected() == []
    finally:
        server.stop()

    attacker = Attacker(server.data)
    try:
        attacker.edit_entry(6, b'"amount":120.5', b'"amount":12.5')
    finally:
        attacker.close()
    restarted = start_server(server.data, port=int(server.url.rsplit(":", 1)[1]))
    try:
        for crypto in ("", "?crypto=noble"):
            page.goto(f"{restarted.url}/events/{EVENT['id']}{crypto}")
            page.wait_for_selector("h1:has-text('invoices.refund')")
            got = verify(page)
            assert got["leaf"] == "fail"
            assert got["root"] == "fail"
            # The page shows what the edited entry says, so the fields agree; what the
            # checkpoint signs is still the original, so its checks pass.
            assert got["fields"] == got["checkpoint"] == got["signature"] == "pass"
            assert page.get_attribute("#verdict", "data-result") == "fail"
        page.screenshot(path=tmp_path / "event-tampered.png", full_page=True)
    finally:
        restarted.stop()

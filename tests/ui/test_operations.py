"""The operations dashboard in a real browser: the SLOs and the clock skew of a producer
two hours ahead, drawn from the same figures as /metrics; a tenant's token is told why
it cannot see them."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import ServerProcess
from tests.ui.conftest import BrowserErrors, emit, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture(scope="module")
def ahead(ui_server: ServerProcess) -> str:
    """Two requests from a producer whose clock is 2 h ahead; a read-only bound token."""
    t = (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    for i in range(2):
        emit(ui_server, [{"id": f"ahead-{i}", "action": "orders.read", "time": t,
                          "outcome": "success", "actor": {"id": "alice", "type": "user"}}])
    return subprocess.run(
        [sys.executable, "-m", "auditkeep", "tokens", "create", "--data",
         str(ui_server.data.root), "--tenant", "default", "--scope", "read"],
        check=True, capture_output=True, text=True).stdout.strip()


def test_the_operations_board_shows_the_slos_and_a_skewed_producer(
        page: Page, ui_server: ServerProcess, ahead: str, errors: BrowserErrors,
        expect: Any, tmp_path: Path) -> None:
    sign_in(page, ui_server, "/dashboards/oncall")
    page.click(".tabs a:has-text('Operations')")
    page.wait_for_url("**/dashboards/operations")
    slo = page.locator("[data-panel=slo-ingest]")
    expect(slo.locator("tr:has-text('objective') td").nth(1)).to_have_text("99.95")
    expect(slo.locator("tr:has-text('SLI since start') td").nth(1)).to_have_text("100")
    expect(slo.locator("tr:has-text('alerting') td").nth(1)).to_have_text("no")
    skew = page.locator("[data-panel=clock-skew]")
    expect(skew).to_have_attribute("data-state", "warning")
    expect(skew.locator("h2 .badge")).to_have_text("warning")
    row = skew.locator("tbody tr", has_text="api")
    expect(row.locator("td").nth(1)).to_have_text("clock ahead 2.0 h")
    expect(row.locator("td").last).to_have_text("2")  # samples: one a request
    p50 = float(row.locator("td").nth(2).inner_text())
    assert -7260 < p50 < -7140
    expect(page.locator("[data-panel=readiness] tbody tr", has_text="storage")
           ).to_contain_text("ok")
    expect(page.locator("h1")).to_have_text("Operations dashboard")
    page.screenshot(path=tmp_path / "dashboard-operations.png", full_page=True)
    assert errors.unexpected() == []


def test_a_tenant_token_is_told_the_board_needs_an_admin(
        page: Page, ui_server: ServerProcess, ahead: str, expect: Any) -> None:
    sign_in(page, ui_server, "/dashboards/operations", token=ahead)
    expect(page.locator(".status-error")).to_contain_text("needs an admin token")
    assert page.locator("[data-panel]").count() == 0

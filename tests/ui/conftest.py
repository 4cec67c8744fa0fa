"""A real Chromium (Debian's, driven by Playwright) and a signed-in page on a real server.

Without Playwright or /usr/bin/chromium the UI tests are skipped, unless
AUDITKEEP_REQUIRE_SERVICES=1 (CI), where a missing browser fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from auditkeep.datadir import DataDir
from tests.conftest import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = Path(os.environ.get("AUDITKEEP_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("AUDITKEEP_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (AUDITKEEP_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser a module, not a session: Playwright's sync API keeps an asyncio loop
    running on the main thread while it is open, and under `make test` (pytest-xdist,
    files spread over workers) a later file of the same worker calls asyncio.run()."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()


class BrowserErrors:
    """Console errors (CSP violations show up there), uncaught exceptions, and failed
    loads of the UI's own files. API errors are the UI's business, not listed."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.messages.append(f"uncaught: {e}"))
        page.on("response", lambda r: self.messages.append(f"{r.status} {r.url}")
                if r.status >= 400 and "/v1/" not in r.url else None)

    def _console(self, message: ConsoleMessage) -> None:
        # The browser logs every 4xx fetch; the response handler above judges those.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.messages.append(message.text)

    def unexpected(self, *allowed: str) -> list[str]:
        return [m for m in self.messages if not any(a in m for a in allowed)]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    p.set_default_timeout(10_000)
    yield p
    context.close()


@pytest.fixture
def expect(browser: Browser) -> Any:
    """Playwright's retrying assertions (imported only once the browser is there)."""
    from playwright.sync_api import expect

    return expect


@pytest.fixture
def errors(page: Page) -> BrowserErrors:
    return BrowserErrors(page)


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = start_server(DataDir(tmp_path_factory.mktemp("ui") / "data"))
    yield s
    s.stop()


def emit(server: ServerProcess, events: list[dict[str, Any]], tenant: str | None = None
         ) -> list[dict[str, Any]]:
    """POST events; their receipts."""
    with server.client() as c:
        r = c.post("/v1/events", json=events, params={"tenant": tenant} if tenant else None)
        r.raise_for_status()
        receipts: list[dict[str, Any]] = r.json()["receipts"]
        return receipts


def sign_in(page: Page, server: ServerProcess, path: str = "/search",
            token: str | None = None) -> None:
    """Open `path`, which asks for the token first, and sign in there."""
    page.goto(server.url + path)
    page.fill("#token", token or server.admin_token)
    page.click("button[type=submit]")
    page.wait_for_selector("#sign-out")


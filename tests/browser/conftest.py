"""A real browser (Debian's chromium, driven by Playwright) on the app served over HTTP by
a real server (werkzeug's, in a thread of the test), on the test's Postgres, Redis and S3.

The tests fail, never skip, without chromium: CI installs it (.ci/run). Screenshots go to
var/test-artifacts/browser/.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright
from werkzeug.serving import make_server

from core.settings import PROJECT_ROOT, Settings

CHROMIUM = Path("/usr/bin/chromium")
REVIEWER_TOKEN = "test-reviewer-token"
ARTIFACTS = PROJECT_ROOT / "var" / "test-artifacts" / "browser"
# No network beyond the app, no first-run or background work: a quiet, repeatable browser.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, reviewer_tokens=(REVIEWER_TOKEN,))


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    """The app on a free port of 127.0.0.1, served by a threaded HTTP server."""
    from api import create_app
    from api.resources import EXTENSION

    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="admin-page-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions[EXTENSION].close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """Chromium with a fresh profile of its own."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser: BrowserContext) -> Page:
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.set_default_timeout(15_000)
    return page


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

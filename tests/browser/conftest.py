"""Playwright fixtures for the dashboard tests: Debian's chromium, a fresh page per test, screenshots."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
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
SCREENSHOTS = Path(__file__).parent / "screenshots"
TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")  # sync Playwright runs its own loop: close it before async tests run
def browser() -> Iterator[Browser]:
    """Debian's chromium driven by Playwright (never `playwright install`)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """open_page(base_url) -> a fresh page; the test fails if any page raised a JavaScript error."""
    contexts = []
    page_errors: list[str] = []

    def open_(base_url: str) -> Page:
        context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 860})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        return page

    expect.set_options(timeout=TIMEOUT_MS)
    yield open_
    for context in contexts:
        context.close()
    assert not page_errors, f"JavaScript errors on the page: {page_errors}"


@pytest.fixture
def page(open_page: Callable[[str], Page], service) -> Page:
    """A page on the standard service (built-in graphs)."""
    return open_page(service.url)


@pytest.fixture
def shoot(browser: Browser, request: pytest.FixtureRequest) -> Callable[..., Path]:
    """shoot(page, "step") saves a full-page screenshot as screenshots/<test>-<n>-<step>.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    (SCREENSHOTS / ".gitignore").write_text("*\n")
    test_name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
    counter = iter(range(1, 100))

    def take(page: Page, step: str) -> Path:
        path = SCREENSHOTS / f"{test_name}-{next(counter):02d}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take

"""A real headless Chromium (Debian's) driven by Playwright, for page tests.

Skipped loudly on a laptop without it; under CI a missing browser is an error.
"""

import importlib.util
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ON_CI

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling outside hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", "/tmp"))


def why_no_browser() -> str:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install -y chromium)"
    return ""


def chromium(why_not: Callable[[], str] = why_no_browser) -> Iterator:
    """Yield a launched Chromium; use as the body of a module-scoped fixture."""
    why = why_not()
    if why:
        if ON_CI:
            pytest.fail(f"CI needs a real browser: {why}")
        print(f"\n{'!' * 8} SKIPPING BROWSER TESTS: {why}")
        pytest.skip(f"SKIPPING BROWSER TESTS: {why}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread for as long as
    # it runs; our ORM calls (and the test database's flush) are still plain
    # synchronous ones, so Django's async guard must stand down meanwhile.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()

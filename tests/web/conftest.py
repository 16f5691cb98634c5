"""A headless Chromium per test module (see test_browser.py for how it is found)."""

from __future__ import annotations

import pytest

from .test_browser import ARGS, CHROMIUM


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's package) driven by Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "Chromium is required in CI: .ci/run installs it"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()

"""Real-browser harness: the dashboard served headless on a free port, driven by Debian's chromium.

Used as fixtures (`dashboard_server`, `browser_page`) by every page's browser test. Screenshots go
to test-artifacts/ (git-ignored) so a person can look at what the test saw.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.browser import (  # noqa: F401 (re-exported)
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    chromium_page,
    dashboard_server,
    free_port,
    wait_for_app,
)

EXCEPTION_BOX = '[data-testid="stException"]'
requires_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                       reason="Debian's chromium is not installed (apt-get install chromium)")


def assert_no_exception(page) -> None:
    boxes = page.locator(EXCEPTION_BOX)
    assert boxes.count() == 0, f"Streamlit exception shown: {boxes.first.inner_text()[:1000]}"


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

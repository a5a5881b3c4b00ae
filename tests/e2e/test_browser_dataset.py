"""Home and Dataset in a real browser against the real FER2013 archive."""
import re
from pathlib import Path

import pytest

from tests.browser_harness import assert_no_exception, requires_chromium, screenshot, wait_for_app
from tests.conftest import FER2013, requires_fer2013

pytestmark = [pytest.mark.browser, requires_chromium]


@requires_fer2013
def test_home_and_dataset_show_the_real_counts(dashboard_url, browser_page):
    url = dashboard_url(FER_DATA=FER2013)
    page = browser_page()
    page.goto(url, timeout=60_000)
    page.get_by_text("FER2013 found").wait_for(timeout=90_000)
    wait_for_app(page)
    assert "35,887 images" in page.inner_text("body")
    assert_no_exception(page)
    screenshot(page, "home")

    page.goto(f"{url}/dataset", timeout=60_000)
    page.get_by_text("Class counts per split").wait_for(timeout=90_000)
    page.get_by_text("Mean face per emotion").wait_for(timeout=90_000)
    page.get_by_role("cell", name="436", exact=True).first.wait_for(timeout=60_000)  # disgust's training images
    wait_for_app(page)
    body = page.inner_text("body")
    assert "28,709" in body
    assert re.search(r"\b436\b", body)
    assert "16.55x" in body  # train imbalance: happy 7,215 / disgust 436
    assert_no_exception(page)
    screenshot(page, "dataset")


def test_home_without_a_dataset_says_how_to_get_one(dashboard_url, browser_page, tmp_path):
    url = dashboard_url(FER_DATA=tmp_path / "nowhere.zip")
    page = browser_page()
    page.goto(url, timeout=60_000)
    page.get_by_text("No dataset yet").wait_for(timeout=90_000)
    assert "kaggle" in page.inner_text("body").lower()
    assert_no_exception(page)
    page.goto(f"{url}/dataset", timeout=60_000)
    page.get_by_text("No dataset.").wait_for(timeout=60_000)
    assert_no_exception(page)
    screenshot(page, "dataset-without-data")


def _server_peak_mb(url: str) -> int:
    """The dashboard server's peak resident memory (VmHWM), found by its port."""
    port = url.rsplit(":", 1)[1]
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"streamlit" in b" ".join(cmdline) and port.encode() in cmdline:
            line = next(ln for ln in status.read_text().splitlines() if ln.startswith("VmHWM"))
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no dashboard server on port {port}")


def test_home_refuses_a_zip_bomb_with_a_message_and_keeps_nothing(dashboard_url, browser_page, tmp_path):
    from tests.project.test_gate import _bomb
    data_dir = tmp_path / "data"
    url = dashboard_url(FER_DATA=tmp_path / "nowhere.zip", FER_DATA_DIR=data_dir)
    page = browser_page()
    page.goto(url, timeout=60_000)
    page.get_by_text("No dataset yet").wait_for(timeout=90_000)
    wait_for_app(page)
    before = _server_peak_mb(url)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(_bomb(tmp_path / "archive.zip")))
    page.get_by_role("button", name="Use this upload").click(timeout=60_000)
    page.get_by_text("Not used:").wait_for(timeout=90_000)
    wait_for_app(page)
    body = page.inner_text("body")
    assert "archive.zip decompresses to 1,024 MB" in body and "refused" in body and ".tmp" not in body
    assert_no_exception(page)
    assert not data_dir.exists() or list(data_dir.iterdir()) == []
    assert _server_peak_mb(url) - before < 200  # MB: the 1 GiB member was never decompressed
    screenshot(page, "home-zip-bomb-refused")

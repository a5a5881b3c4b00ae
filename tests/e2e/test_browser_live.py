"""The Live page end to end: Chromium's fake camera plays a real face; the page shows its emotion and the FPS."""
import re

import pytest

from tests.browser_harness import assert_no_exception, requires_chromium, screenshot, wait_for_app
from tests.fake_camera import write_face_clip

pytestmark = [pytest.mark.browser, requires_chromium]


def test_live_page_labels_the_face_from_a_fake_camera(dashboard_url, browser_page, tmp_path):
    clip = write_face_clip(tmp_path / "face.y4m")
    url = dashboard_url()
    page = browser_page(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                         f"--use-file-for-fake-video-capture={clip}"])
    page.goto(f"{url}/live", timeout=60_000)
    page.get_by_text("Press START").first.wait_for(timeout=90_000)
    wait_for_app(page)
    frame = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=30_000)
    page.get_by_text("Processing rate").wait_for(timeout=30_000)
    try:
        page.wait_for_function(
        "() => /Face 1: (angry|disgust|fear|happy|sad|surprise|neutral)/.test(document.body.innerText)"
            " && /Processing rate: ([1-9][0-9]*\\.[0-9]|0\\.[1-9])/.test(document.body.innerText)", timeout=30_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)  # the emotion-over-time chart, redrawn every 2 s
    finally:
        screenshot(page, "live")
    assert_no_exception(page)


def test_a_refused_camera_is_explained(dashboard_url, browser_page):
    url = dashboard_url()
    page = browser_page(["--deny-permission-prompts", "--use-fake-device-for-media-stream"])
    page.goto(f"{url}/live", timeout=60_000)
    page.get_by_text("Press START").first.wait_for(timeout=90_000)
    frame = page.frame_locator('iframe[title="streamlit_webrtc.component.webrtc_streamer"]')
    frame.get_by_role("button", name=re.compile("start", re.I)).click(timeout=30_000)
    frame.get_by_text("NotAllowedError").wait_for(timeout=30_000)
    assert "the browser refused the camera" in page.inner_text("body")
    assert_no_exception(page)
    screenshot(page, "live-camera-refused")

"""The Predict page in a real browser: upload a face photo, see its label, a chart and a bad file's message."""
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser_harness import assert_no_exception, requires_chromium, screenshot, wait_for_app
from tests.sample_files import BAD_IMAGES, astronaut_rgb, jpeg_bytes

pytestmark = [pytest.mark.browser, requires_chromium]


def test_uploading_a_photo_shows_its_label(dashboard_url, browser_page, tiny_checkpoint, tmp_path):
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg_bytes(astronaut_rgb()))
    notes = tmp_path / "notes.jpg"
    notes.write_bytes(BAD_IMAGES[0][1])
    url = dashboard_url(FER_YUNET_MODEL="")
    page = browser_page()
    page.goto(f"{url}/predict", timeout=60_000)
    page.get_by_text("Test-time augmentation").wait_for(timeout=90_000)
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="Another checkpoint file…").click()
    path_box = page.get_by_label("Checkpoint path")
    path_box.fill(str(tiny_checkpoint))
    path_box.press("Enter")
    # the rerun that loads the chosen checkpoint must be over before the upload, or it can drop the upload
    page.get_by_text(f"Using {tiny_checkpoint}").wait_for(timeout=60_000)
    wait_for_app(page)
    upload = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
    upload.set_input_files([str(photo), str(notes)])
    try:
        page.get_by_text("Face 1:").wait_for(timeout=90_000)
    except PlaywrightTimeout:
        screenshot(page, "predict-no-face")
        raise AssertionError(f"no face label after the upload; the page shows:\n{page.inner_text('body')[:2000]}") from None
    page.get_by_text("notes.jpg is not an image").wait_for(timeout=30_000)
    wait_for_app(page)
    body = page.inner_text("body")
    caption = next(line for line in body.splitlines() if line.startswith("astronaut.jpg: "))
    assert any(e in caption for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
    assert_no_exception(page)
    screenshot(page, "predict")

"""The Train page in a real browser: a finished run with its curves; a job started from the form."""
import time

import pytest

from dashboard.train.runs import STATE_BADGES
from fer_core.runs.registry import Registry
from fer_core.training.config import TrainConfig
from fer_core.training.train import main

from tests.browser_harness import assert_no_exception, requires_chromium, screenshot, wait_for_app

pytestmark = [pytest.mark.browser, requires_chromium]


def test_train_page_lists_runs_shows_curves_and_starts_jobs(dashboard_url, browser_page, make_kaggle_zip, tmp_path):
    data = make_kaggle_zip()
    runs = tmp_path / "runs"
    main(TrainConfig(arch="fer_vgg_small", data=str(data), out=str(runs), name="first-run", epochs=2,
                     batch_size=16, tta_views=2))
    url = dashboard_url(FER_DATA=data, FER_RUNS_DIR=runs)
    page = browser_page()
    page.goto(f"{url}/train", timeout=60_000)
    page.get_by_text("first-run").first.wait_for(timeout=90_000)
    wait_for_app(page)
    assert STATE_BADGES["finished"] in page.inner_text("body")  # the state badge, not the run's name
    page.get_by_text("Curves and log").first.click()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30_000)
    assert_no_exception(page)
    screenshot(page, "train-finished-run")

    page.get_by_label("Epochs").first.fill("1")
    page.get_by_label("Run name (optional)").fill("from-the-form")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Queued").first.wait_for(timeout=30_000)
    page.get_by_text("from-the-form").first.wait_for(timeout=30_000)
    assert_no_exception(page)
    screenshot(page, "train-started-from-form")

    registry = Registry(runs)
    deadline = time.time() + 180
    while registry.get("from-the-form").state in ("queued", "running") and time.time() < deadline:
        time.sleep(1)
    assert registry.get("from-the-form").state == "finished"

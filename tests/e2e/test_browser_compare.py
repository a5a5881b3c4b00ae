"""Compare in a real browser: two runs side by side, a clicked confusion-matrix cell shows its images;
a fresh clone (no runs) shows the shipped model cards."""
from __future__ import annotations

import json
import re
import shutil
import time

import numpy as np
import pytest

from fer_core.labels import EMOTIONS
from tests.browser_harness import (assert_no_exception, chromium_page, dashboard_server, requires_chromium, screenshot,
                                   wait_for_app)

pytestmark = [pytest.mark.browser, requires_chromium]
VIEWPORT = (1400, 3200)  # tall: Streamlit scrolls inside the page, so full-page screenshots need it


def open_compare(page, url: str, wait_text: str) -> None:
    page.goto(f"{url}/compare", timeout=60_000)
    page.get_by_text(wait_text).first.wait_for(timeout=90_000)
    wait_for_app(page)


def wait_for_image_counts(page, expected: int, timeout_s: float = 90) -> list[int]:
    """The '<n> images' captions of the cell explorer, once every model's column has one."""
    deadline = time.time() + timeout_s
    while True:
        wait_for_app(page)
        body = page.inner_text("body")
        counts = sorted(int(n) for n in re.findall(r"^(\d+) images", body, flags=re.MULTILINE))
        if len(counts) >= expected or time.time() > deadline:
            return counts
        time.sleep(0.5)


def test_two_runs_side_by_side_and_the_images_of_a_clicked_cell(compare_world, tmp_path):
    runs = tmp_path / "runs"
    for name in ("small-a", "elu-b"):
        shutil.copytree(compare_world["runs"] / name, runs / name)
    # the cell to click: the fullest cell of both runs' PrivateTest (TTA) confusion matrices together
    matrices = [np.array(json.loads((runs / n / "eval.json").read_text())["test"]["tta"]["confusion_matrix"])
                for n in ("small-a", "elu-b")]
    true, predicted = np.unravel_index(np.argmax(sum(matrices)), matrices[0].shape)
    expected_counts = sorted(int(m[true, predicted]) for m in matrices)

    env = {"FER_RUNS_DIR": str(runs), "FER_MODELS_DIR": str(tmp_path / "no-models"),
           "FER_DATA": str(compare_world["data"]), "FER_CACHE_DIR": str(tmp_path / "cache"),
           # every prediction goes to the background worker: the images can only appear through the
           # progress fragment's rerun of the page when the worker is done
           "FER_QUICK_WAIT_S": "0"}
    with dashboard_server(env) as url, chromium_page(viewport=VIEWPORT) as page:
        open_compare(page, url, "Images in a cell")
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "small-a · run · fer_vgg_small" in body and "elu-b · run · elu_cnn" in body
        assert len(re.findall(r"accuracy \d+\.\d\d% · macro-F1", body)) == 2
        assert_no_exception(page)

        plot_area = page.locator(".js-plotly-plot").first.locator(".nsewdrag").first.bounding_box()
        x = plot_area["x"] + (predicted + 0.5) / len(EMOTIONS) * plot_area["width"]
        y = plot_area["y"] + (true + 0.5) / len(EMOTIONS) * plot_area["height"]
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        counts = wait_for_image_counts(page, expected=2)
        assert counts == expected_counts, page.inner_text("body")[:3000]
        # the captions come first in the rerun the worker triggers; the images follow them
        page.locator('[data-testid="stImage"] img, [data-testid="stImage"]').first.wait_for(timeout=30_000)
        assert_no_exception(page)
        screenshot(page, "compare-two-runs-cell")


def test_a_fresh_clone_shows_the_shipped_model_cards(compare_world, tmp_path):
    env = {"FER_RUNS_DIR": str(tmp_path / "runs-not-made"), "FER_MODELS_DIR": str(compare_world["models"]),
           "FER_DATA": str(tmp_path / "no-data.zip")}
    with dashboard_server(env) as url, chromium_page(viewport=VIEWPORT) as page:
        open_compare(page, url, "Is the difference real?")
        page.get_by_text("reference-small · shipped model · fer_vgg_small").wait_for(timeout=30_000)  # ready to compare
        body = page.inner_text("body")
        assert "vgg16" in body and "inception_v3" in body  # architectures still without a card are named
        assert len(re.findall(r"accuracy \d+\.\d\d% · macro-F1", body)) == 2  # the cards' metrics and matrices
        page.locator(".js-plotly-plot").first.wait_for(timeout=30_000)
        assert_no_exception(page)
        screenshot(page, "compare-fresh-clone")


def test_without_checkpoints_a_reference_cards_cell_shows_its_images_and_mcnemar(compare_world, tmp_path):
    """A fresh clone with the dataset but no checkpoints: the cards' stored per-image predictions are enough
    for a cell's images, and for McNemar's test between the two picked cards."""
    models = tmp_path / "models"
    shutil.copytree(compare_world["models"], models, ignore=shutil.ignore_patterns("*.pt"))
    cards = {n: json.loads((models / f"{n}.json").read_text()) for n in ("reference-small", "reference-elu")}
    matrices = [np.array(c["metrics"]["test"]["tta"]["confusion_matrix"]) for c in cards.values()]
    true, predicted = np.unravel_index(np.argmax(sum(matrices)), matrices[0].shape)
    expected_counts = sorted(int(m[true, predicted]) for m in matrices)
    env = {"FER_RUNS_DIR": str(tmp_path / "runs-not-made"), "FER_MODELS_DIR": str(models),
           "FER_DATA": str(compare_world["data"]), "FER_CACHE_DIR": str(tmp_path / "cache")}
    with dashboard_server(env) as url, chromium_page(viewport=VIEWPORT) as page:
        open_compare(page, url, "Images in a cell")
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "reference-elu · reference card · elu_cnn" in body and "McNemar's exact test" in body
        plot_area = page.locator(".js-plotly-plot").first.locator(".nsewdrag").first.bounding_box()
        x = plot_area["x"] + (predicted + 0.5) / len(EMOTIONS) * plot_area["width"]
        y = plot_area["y"] + (true + 0.5) / len(EMOTIONS) * plot_area["height"]
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        assert wait_for_image_counts(page, expected=2) == expected_counts, page.inner_text("body")[:3000]
        if max(expected_counts):
            page.locator('[data-testid="stImage"] img, [data-testid="stImage"]').first.wait_for(timeout=30_000)
        assert not list(models.glob("*.pt")) and "not a readable checkpoint" not in page.inner_text("body")
        assert_no_exception(page)
        screenshot(page, "compare-cards-without-checkpoints")

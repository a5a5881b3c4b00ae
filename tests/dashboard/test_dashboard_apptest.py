"""Every page script runs under Streamlit's AppTest without an exception, with and without a dataset."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
NEEDS_A_REAL_RUNTIME = {"pages/live.py": "streamlit-webrtc needs a real Streamlit server (AppTest has none); "
                                          "tests/e2e/test_browser_live.py runs the Live page in a browser"}
SCRIPTS = [pytest.param(s, marks=pytest.mark.skip(reason=NEEDS_A_REAL_RUNTIME[s])) if s in NEEDS_A_REAL_RUNTIME else s
           for s in ["dashboard/Home.py", *sorted(f"pages/{p.name}" for p in (REPO / "pages").glob("*.py"))]]


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def run(script: str) -> AppTest:
    at = AppTest.from_file(str(REPO / script), default_timeout=180).run()
    assert not at.exception, f"{script}: {[e.value for e in at.exception]}"
    return at


@pytest.mark.parametrize("script", SCRIPTS)
def test_page_runs_with_a_dataset(script, isolated, monkeypatch, make_kaggle_zip):
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    run(script)


@pytest.mark.parametrize("script", SCRIPTS)
def test_page_runs_without_a_dataset(script, isolated, monkeypatch):
    monkeypatch.setenv("FER_DATA", str(isolated / "nowhere.zip"))
    run(script)


def test_home_says_how_to_get_the_data(isolated, monkeypatch):
    monkeypatch.setenv("FER_DATA", str(isolated / "nowhere.zip"))
    at = run("dashboard/Home.py")
    assert any("No dataset yet" in e.value and "does not exist" in e.value for e in at.error)


def test_home_reports_a_found_dataset(isolated, monkeypatch, make_kaggle_zip):
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    at = run("dashboard/Home.py")
    assert any("FER2013 found" in s.value and "84 images" in s.value for s in at.success)


def test_home_rejects_a_path_that_is_not_fer2013(isolated, monkeypatch, tmp_path):
    monkeypatch.setenv("FER_DATA", str(isolated / "nowhere.zip"))
    bogus = tmp_path / "photos.zip"
    bogus.write_bytes(b"not a zip at all")
    at = run("dashboard/Home.py")
    at.text_input[0].set_value(str(bogus))
    next(b for b in at.button if b.label == "Use this path").click().run()
    assert not at.exception
    assert any("not a valid zip" in e.value for e in at.error)


def test_dataset_page_shows_counts_weights_and_the_audit(isolated, monkeypatch, make_kaggle_zip):
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    at = run("pages/dataset.py")
    assert [m.value for m in at.metric][:3] == ["42", "21", "21"]
    assert len(at.table) >= 1
    at.toggle(key="audit_on").set_value(True).run()
    assert not at.exception
    assert any(m.label == "exact duplicate groups" for m in at.metric)

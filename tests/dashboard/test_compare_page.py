"""The Compare page in Streamlit's AppTest: the table, two runs side by side, the cell explorer,
a fresh clone showing only model cards, damaged checkpoints and an ensemble saved for Predict."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.labels import EMOTIONS
from tests.conftest import REPO

PAGE = str(REPO / "pages" / "compare.py")


@pytest.fixture(autouse=True)
def fresh_worker(monkeypatch):
    """A worker of the test's own, waited for as long as it takes: AppTest does not run the page's
    self-refreshing progress fragment, so a page must not leave its evaluations to it."""
    import dashboard.shared.background as background
    monkeypatch.setattr(background, "_POOL", background.TaskPool())
    monkeypatch.setattr(background, "QUICK_WAIT_S", 120.0)
    return background


@pytest.fixture
def page(compare_world, monkeypatch, tmp_path):
    """The page over the tiny world, with a models/ copy the test may write into."""
    import shutil
    models = tmp_path / "models"
    shutil.copytree(compare_world["models"], models)
    monkeypatch.setenv("FER_RUNS_DIR", str(compare_world["runs"]))
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    monkeypatch.setenv("FER_DATA", str(compare_world["data"]))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    return at


def test_table_lists_runs_and_cards_with_a_csv_download(page):
    table = page.dataframe[0].value
    assert set(table["name"]) == {"small-a", "elu-b", "damaged-c", "reference-small", "reference-elu"}
    assert {"architecture", "parameters", "balancing", "epochs", "val acc %", "test acc TTA %",
            "test macro-F1 (TTA)", "disgust recall (TTA)", "fear recall (TTA)", "training min", "device",
            "images/s"} <= set(table.columns)
    assert "damaged" in table.set_index("name").loc["damaged-c", "note"]
    assert [b.label for b in page.get("download_button")] == ["Table as CSV"]
    assert any("No reference model card yet for" in i.value and "vgg16" in i.value for i in page.info)
    page.multiselect(key="compare_arch").select("elu_cnn").run()
    assert list(page.dataframe[0].value["name"]) == ["elu-b", "reference-elu"]  # grouped: runs before reference cards


def test_two_runs_side_by_side_and_the_images_of_a_chosen_cell(page):
    page.multiselect(key="compare_pick").set_value(["run:small-a", "run:elu-b"]).run()
    assert not page.exception and not page.error
    assert [c.key for c in page.get("plotly_chart") if c.key.startswith("cm:")] == ["cm:run:small-a", "cm:run:elu-b"]
    assert any("most accurate here" in md.value for md in page.markdown)
    page.radio(key="compare_norm").set_value("row-normalised").run()
    page.selectbox(key="cell_true").select("angry").run()
    page.selectbox(key="cell_pred").select("angry").run()
    assert not page.exception and not page.error
    captions = [c.value for c in page.caption if c.value.endswith("images") or "most confident" in c.value]
    assert len(captions) == 2  # one image count per model
    assert page.get("image"), "the cell's images are shown"


def test_heat_maps_of_a_cell_for_both_classes_and_the_mean_per_emotion(page):
    import re
    page.multiselect(key="compare_pick").set_value(["run:small-a", "run:elu-b"]).run()
    page.toggle(key="compare_tta").set_value(False).run()
    page.toggle(key="cell_heat").set_value(True).run()

    def heat_rows(true: str, predicted: str) -> tuple[list[str], int]:
        page.selectbox(key="cell_true").select(true).run()
        page.selectbox(key="cell_pred").select(predicted).run()
        assert not page.exception and not page.error
        counts = [int(m.group(1)) for c in page.caption if (m := re.match(r"(\d+) images", c.value))]
        return [c.value for c in page.caption if c.value.startswith("Each face, then")], sum(n > 0 for n in counts)
    off_diagonal = next((t, p) for t in EMOTIONS for p in EMOTIONS if t != p and heat_rows(t, p)[1])
    heads, models = heat_rows(*off_diagonal)
    assert len(heads) == models  # per model with images in the cell: each face beside its two maps
    assert heads[0].startswith(f"Each face, then where the network found *{off_diagonal[1]}*, then *{off_diagonal[0]}*")
    assert page.get("image"), "faces shown with their maps side by side"
    page.toggle(key="mean_heat").set_value(True).run()
    assert not page.exception and not page.error
    means = [img for img in page.get("image") if img.captions == list(EMOTIONS)]
    assert len(means) == 2  # one row of 7 per picked model


def test_a_long_prediction_runs_in_the_background_and_shows_when_done(page, fresh_worker, monkeypatch, tmp_path):
    import threading
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))  # nothing predicted yet
    release = threading.Event()
    fresh_worker.task_pool().submit("blocker", "another evaluation", lambda progress: release.wait(60))
    page.multiselect(key="compare_pick").set_value(["run:small-a", "run:elu-b"]).run()
    page.toggle(key="compare_tta").set_value(False).run()
    page.selectbox(key="cell_true").select("sad").run()
    page.selectbox(key="cell_pred").select("happy").run()
    assert not page.exception and not page.error
    bars = [p.proto.text for p in page.get("progress") if "runs on if you leave this page" in p.proto.text]
    assert len(bars) == 2 and all("queued" in b for b in bars) and not page.get("image")  # the page did not wait
    release.set()
    fresh_worker.task_pool()._executor.submit(lambda: None).result(60)  # the worker is idle: the tasks are done
    page.run()
    assert not [p for p in page.get("progress") if "runs on" in p.proto.text] and not page.exception
    cell_counts = [c for c in page.caption if c.value.split()[0].isdigit() and c.value.split()[1] == "images"]
    assert len(cell_counts) == 2  # one image count per model


def test_damaged_checkpoint_is_a_note_not_an_exception(page, compare_world):
    import json

    import numpy as np
    # the healthy run's fullest PrivateTest (TTA) cell: it must still show its images beside the damaged run
    cm = np.array(json.loads((compare_world["runs"] / "small-a" / "eval.json").read_text())["test"]["tta"]["confusion_matrix"])
    true, predicted = np.unravel_index(cm.argmax(), cm.shape)
    page.multiselect(key="compare_pick").set_value(["run:small-a", "run:damaged-c"]).run()
    page.selectbox(key="cell_true").select(EMOTIONS[true]).run()
    page.selectbox(key="cell_pred").select(EMOTIONS[predicted]).run()
    assert not page.exception
    notes = [i.value for i in page.info if "No per-image predictions" in i.value]
    assert len(notes) == 1 and "damaged-c" in notes[0] and "not a readable checkpoint" in notes[0]
    counts = [c.value for c in page.caption if c.value.split()[0].isdigit() and c.value.split()[1] == "images"]
    assert counts == [f"{cm[true, predicted]} images"] and page.get("image")


def test_a_fresh_clone_shows_the_shipped_model_cards(compare_world, monkeypatch, tmp_path):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs-not-made"))
    monkeypatch.setenv("FER_MODELS_DIR", str(compare_world["models"]))
    monkeypatch.delenv("FER_DATA", raising=False)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["name"]) == ["reference-small", "reference-elu"]  # shipped, then reference
    assert not (tmp_path / "runs-not-made").exists()
    charts = [c.key for c in at.get("plotly_chart")]
    assert {"cm:card:reference-small", "cm:card:reference-elu", "curves"} <= set(charts)  # cards alone: matrices, curves
    # McNemar's test from the cards' stored per-image predictions: no checkpoint run, no dataset needed
    verdicts = [m.value for m in [*at.success, *at.info] if "McNemar's exact test" in m.value]
    assert len(verdicts) == 1 and "PrivateTest (test), TTA: Of " in verdicts[0]


def test_an_ensemble_of_reference_cards_needs_no_checkpoint_and_no_dataset(compare_world, monkeypatch, tmp_path):
    import shutil
    models = tmp_path / "models"
    shutil.copytree(compare_world["models"], models, ignore=shutil.ignore_patterns("*.pt"))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs-not-made"))
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    monkeypatch.setenv("FER_DATA", str(tmp_path / "no-data.zip"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.multiselect(key="ens_members").set_value(["card:reference-small", "card:reference-elu"]).run()
    at.button(key="ens_eval").click().run()
    assert not at.exception and not at.error
    assert any(m.label.startswith("PrivateTest (test) accuracy") for m in at.metric)
    assert any("cannot be saved as a model" in c.value for c in at.caption)  # no weights to ship
    assert not any("dataset is needed" in w.value for w in at.warning)


def test_an_ensemble_is_evaluated_compared_and_saved_for_predict(page, tmp_path):
    from fer_core.models.ensemble import list_ensembles
    from fer_core.models.loading import load_model
    page.multiselect(key="ens_members").set_value(["run:small-a", "run:elu-b"]).run()
    page.number_input(key="ens_views").set_value(2).run()
    page.button(key="ens_eval").click().run()
    assert not page.exception and not page.error
    assert any(m.label.startswith("PrivateTest (test) accuracy") for m in page.metric)
    assert "ensemble of small-a + elu-b" in set(page.dataframe[0].value["name"])
    page.text_input(key="ens_name").input("duo").run()
    page.button(key="ens_save").click().run()
    assert not page.exception and not page.error
    assert any("Predict page can use it" in s.value for s in page.success)
    kinds = page.dataframe[0].value.set_index("name")["kind"]
    assert kinds["duo"] == "ensemble" and "ensemble of small-a + elu-b" not in kinds.index
    page.button(key="ens_eval").click().run()  # the saved one left the form; a second save of "duo" is refused
    page.text_input(key="ens_name").input("duo").run()
    page.button(key="ens_save").click().run()
    assert any("already exists" in e.value for e in page.error) and not page.exception
    [(name, card)] = list_ensembles(tmp_path / "models")
    assert name == "duo" and len(load_model(card).members) == 2


def test_a_run_without_evaluation_is_evaluated_on_request(compare_world, monkeypatch, tmp_path):
    import shutil
    runs = tmp_path / "runs"
    shutil.copytree(compare_world["runs"] / "small-a", runs / "small-a")
    shutil.copytree(compare_world["runs"] / "small-a", runs / "training-d")
    (runs / "training-d" / "eval.json").unlink()  # as while it trains
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "no-models"))
    monkeypatch.setenv("FER_DATA", str(compare_world["data"]))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    table = at.dataframe[0].value.set_index("name")
    assert table.loc["training-d", "val acc %"] is not None and "not evaluated yet" in table.loc["training-d", "note"]
    at.multiselect(key="compare_pick").set_value(["run:small-a", "run:training-d"]).run()
    assert [c.key for c in at.get("plotly_chart") if c.key.startswith("cm:")] == ["cm:run:small-a"]
    at.button(key="evaluate:run:training-d:test:True").click().run()
    assert not at.exception and not at.error
    assert [c.key for c in at.get("plotly_chart") if c.key.startswith("cm:")] == ["cm:run:small-a", "cm:run:training-d"]
    at.radio(key="compare_norm").set_value("row-normalised").run()  # stays evaluated on later reruns
    assert len([c for c in at.get("plotly_chart") if c.key.startswith("cm:")]) == 2


def test_a_sweeps_runs_are_shown_together(monkeypatch, tmp_path):
    from fer_core.runs.registry import Registry
    from fer_core.training.config import TrainConfig
    ids = Registry(tmp_path / "runs").submit_sweep(TrainConfig(epochs=1), {"lr": [0.01, 0.02]}, name="lr-sweep",
                                                   start_worker=False)
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "no-models"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.selectbox(key="compare_sweep").select("lr-sweep").run()
    assert sorted(at.dataframe[0].value["name"]) == sorted(ids)
    at.button(key="compare_sweep_pick").click().run()
    assert not at.exception and sorted(at.multiselect(key="compare_pick").value) == sorted(f"run:{i}" for i in ids)
    assert sum("No TTA evaluation" in i.value for i in at.info) == 2  # queued: nothing to show yet, said clearly


def test_a_studys_trials_are_grouped_and_its_figures_shown(monkeypatch, tmp_path, make_kaggle_zip):
    from fer_core.cli import main
    runs = tmp_path / "runs"
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "no-models"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert any("No study yet" in i.value for i in at.info) and not (runs / "optuna.db").exists()  # looking creates none
    assert main(["tune", "--space", "lr=0.001:0.1:log", "--trials", "3", "--study", "lr-study", "--epochs", "2",
                 "--batch-size", "16", "--tta-views", "2", "--device", "cpu", "--data", str(make_kaggle_zip()),
                 "--out", str(runs)]) == 0
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception and at.selectbox(key="study_pick").value == "lr-study"
    at.selectbox(key="compare_sweep").select("lr-study").run()  # the trials are runs, grouped by the study
    assert sorted(at.dataframe[0].value["name"]) == ["lr-study-000", "lr-study-001", "lr-study-002"]
    trials = at.dataframe[1].value
    assert list(trials["trial"]) == [0, 1, 2] and set(trials["state"]) <= {"complete", "pruned"}
    charts = [c.key for c in at.get("plotly_chart") if c.key.startswith("study:")]
    assert "study:Optimisation history" in charts and "study:PublicTest accuracy per epoch (pruned trials stop early)" in charts


def test_a_fresh_clone_opens_on_the_default_model_and_names_the_kinds(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_MODELS_DIR", str(REPO / "models"))
    monkeypatch.setenv("FER_DATA", str(tmp_path / "nowhere.zip"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert at.multiselect(key="compare_pick").value[0] == "card:default"
    kinds = at.dataframe[0].value.set_index("name")["kind"]
    assert kinds.index[0] == "default ★" and kinds["default ★"] == "shipped model"
    assert kinds["ref-fer_vgg"] == "reference card" and kinds["ensemble-4"] == "ensemble"
    assert "experiment" not in set(kinds), "experiments are collapsed until asked for"
    assert list(dict.fromkeys(kinds))[:3] == ["shipped model", "ensemble", "reference card"], "grouped by kind"
    at.toggle(key="compare_experiments").set_value(True).run()
    kinds = at.dataframe[0].value.set_index("name")["kind"]
    assert kinds["mstudent4x-fer_vgg_small"] == "experiment" and kinds.iloc[-1] == "experiment"

"""Compare's library side: runs and cards as entries, cached and stored per-image predictions, ensembles of
entries, the computed reading, McNemar's test. The `compare_world` fixture lives in conftest.py."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard.compare.views import cell_indices, kind_label, most_confused_pair, reading, summary_rows
from fer_core.cards.catalog import all_entries, architectures_without_cards, card_entries, run_entries
from fer_core.cards.ensembles import ensemble_metrics
from fer_core.errors import CheckpointError
from fer_core.evaluation.metrics import metrics_report
from fer_core.evaluation.prediction_cache import predictions
from fer_core.labels import EMOTIONS


def test_runs_and_cards_become_entries(compare_world):
    entries = all_entries(compare_world["runs"], compare_world["models"])
    by_name = {e.name: e for e in entries}
    assert set(by_name) == {"small-a", "elu-b", "damaged-c", "reference-small", "reference-elu"}
    card = by_name["reference-small"]
    assert kind_label(card) == "shipped model" and card.checkpoint.name == "reference-small.pt"
    assert card.report("test", True)["tta_views"] == 2 and card.learning_curve
    run = by_name["elu-b"]
    assert kind_label(run) == "run" and run.state == "finished" and run.arch == "elu_cnn" and run.epochs == 1
    assert run.parameters and run.training_seconds and run.images_per_s and run.device
    rows = {r["name"]: r for r in summary_rows(entries)}
    assert rows["elu-b"]["test acc TTA %"] == pytest.approx(100 * run.accuracy("test", True), abs=0.01)
    assert "damaged" in rows["damaged-c"]["note"] and by_name["damaged-c"].checkpoint is None
    assert rows["reference-small"]["kind"] == "shipped model"
    assert "fer_vgg_small" not in architectures_without_cards(entries)
    assert "vgg16" in architectures_without_cards(entries)


def test_a_fresh_clone_has_only_cards(tmp_path, compare_world):
    assert run_entries(tmp_path / "no-runs") == [] and not (tmp_path / "no-runs").exists()
    cards = card_entries(compare_world["models"])
    assert [c.name for c in cards] == ["reference-elu", "reference-small"]
    assert card_entries(tmp_path / "nothing") == []


def test_predictions_are_cached_per_checkpoint_split_and_views(compare_world, tmp_path):
    from fer_core.data.fer2013 import load_dataset
    dataset = load_dataset(compare_world["data"])
    best = compare_world["runs"] / "small-a" / "best.pt"
    cache = tmp_path / "cache"
    probs = predictions(best, dataset, "test", 1, cache_dir=cache)
    assert probs.shape == (len(dataset["test"]), len(EMOTIONS))
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-4)
    assert len(list(cache.rglob("*.npz"))) == 1
    predictions(best, dataset, "test", 1, cache_dir=cache)
    predictions(best, dataset, "test", 2, cache_dir=cache)
    assert len(list(cache.rglob("*.npz"))) == 2
    # the cached probabilities reproduce the run's own evaluation
    report = metrics_report(dataset["test"].labels, probs.argmax(1))
    evaluation = run_entries(compare_world["runs"])
    small = next(e for e in evaluation if e.name == "small-a")
    assert report["accuracy"] == pytest.approx(small.accuracy("test", False))
    with pytest.raises(CheckpointError):
        predictions(compare_world["runs"] / "damaged-c" / "best.pt", dataset, "test", 1, cache_dir=cache)
    with pytest.raises(CheckpointError, match="not found"):
        predictions(tmp_path / "gone.pt", dataset, "test", 1, cache_dir=cache)


def test_ensemble_metrics_of_two_runs(compare_world):
    from fer_core.data.fer2013 import load_dataset
    dataset = load_dataset(compare_world["data"])
    checkpoints = [compare_world["runs"] / n / "best.pt" for n in ("small-a", "elu-b")]
    metrics, _ = ensemble_metrics(checkpoints, dataset, tta_views=2)
    assert metrics["test"]["tta"]["tta_views"] == 2 and metrics["val"]["plain"]["n"] == len(dataset["val"])
    assert np.asarray(metrics["test"]["plain"]["confusion_matrix"]).sum() == len(dataset["test"])


def test_cell_indices_most_confident_first():
    labels = np.array([4, 4, 4, 2])
    probs = np.zeros((4, 7))
    probs[0, 2], probs[1, 2], probs[2, 4], probs[3, 2] = 0.6, 0.9, 0.8, 0.7
    assert cell_indices(labels, probs, 4, 2).tolist() == [1, 0]


def test_reading_names_best_and_worst_class_and_most_confused_pair():
    y_true = np.array([0, 0, 0, 3, 3, 3, 4, 4, 4, 4])
    a = metrics_report(y_true, np.array([0, 0, 0, 3, 3, 3, 2, 2, 2, 4]))  # sad -> fear three times
    b = metrics_report(y_true, np.array([0, 4, 4, 3, 3, 3, 4, 4, 4, 4]))
    assert most_confused_pair(a)[:3] == ("sad", "fear", 3)
    lines = reading({"A": a, "B": b})
    assert "**A**" in lines[0] and "mistakes *sad* for *fear* (3 images, 75% of sad)" in lines[0]
    assert "best class *angry* (F1 1.00), worst *sad* (F1 0.40)" in lines[0]  # fear has no images: not ranked
    assert lines[2] == "**B** is the most accurate here, 10.0 points above **A**."
    assert lines[3].startswith("They differ most on *")


def test_cli_ensemble_prints_metrics_and_saves(compare_world, tmp_path, capsys):
    from fer_core.cli import main
    from fer_core.models.ensemble import list_ensembles
    checkpoints = [str(compare_world["runs"] / n / "best.pt") for n in ("small-a", "elu-b")]
    code = main(["ensemble", *checkpoints, "--data", str(compare_world["data"]), "--tta-views", "2",
                 "--name", "duo", "--models-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0 and "PrivateTest: accuracy" in out and "saved the ensemble" in out
    [(name, card)] = list_ensembles(tmp_path)
    assert name == "duo" and "0-small-a.pt" in card.read_text()
    assert main(["ensemble", checkpoints[0]]) == 2


def test_a_quick_run_is_marked_beside_full_results():
    from fer_core.cards.catalog import RUN, Entry
    report = {"n": 64, "accuracy": 0.17, "macro_f1": 0.1, "per_class": {c: {"recall": 0.0} for c in EMOTIONS}}
    full = {**report, "n": 3589, "accuracy": 0.7}
    quick = Entry(key="run:q", name="q", kind=RUN, arch="fer_vgg_small", reports={"test": {"plain": report, "tta": report}})
    whole = Entry(key="run:w", name="w", kind=RUN, arch="fer_vgg_small", reports={"test": {"plain": full, "tta": full}})
    rows = {r["name"]: r for r in summary_rows([quick, whole])}
    assert "quick run" in rows["q"]["note"] and "64 images" in rows["q"]["note"] and rows["w"]["note"] == ""

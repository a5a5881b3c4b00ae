"""Model cards: an explicit kind, provenance instead of the author's paths, per-image predictions beside the
card that reproduce its figures, clean-PrivateTest figures, ensembles of stored predictions, McNemar's test."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core.cards.ensembles import ensemble_metrics
from fer_core.cards.model_cards import card_kind, load_cards
from fer_core.cards.predictions import CardPredictions, load_predictions, predictions_path
from fer_core.cli import main
from fer_core.data.leakage import clean_report, leaked_test_mask
from fer_core.errors import FERError
from fer_core.evaluation.metrics import metrics_report
from fer_core.evaluation.significance import mcnemar

from tests.conftest import kaggle_entries


def test_a_shipped_card_has_a_kind_no_author_paths_and_predictions_that_reproduce_it(compare_world):
    card_path = compare_world["models"] / "reference-small.json"
    text = card_path.read_text()
    card = json.loads(text)
    assert card["kind"] == "shipped" and card["provenance"]["dataset"] == "archive.zip"
    assert str(compare_world["root"]) not in text and "data" not in card["train_config"]
    assert {"git_commit", "torch", "seed"} <= set(card["provenance"])
    stored = load_predictions(compare_world["models"] / card["predictions"])
    for split in ("val", "test"):
        for tta in (False, True):
            report = metrics_report(stored.labels[split], stored.get(split, tta).argmax(1))
            mode = card["metrics"][split]["tta" if tta else "plain"]
            assert report["confusion_matrix"] == mode["confusion_matrix"]
    clean = card["metrics"]["test"]["tta"]["clean"]
    assert clean["n"] + clean["removed"] == card["metrics"]["test"]["tta"]["n"] and "Training" in clean["rule"]


def test_a_reference_card_is_of_kind_reference(compare_world):
    cards = {c["name"]: c for c in load_cards(compare_world["models"])}
    assert cards["reference-elu"]["kind"] == "reference" and cards["reference-elu"]["checkpoint"] is None
    assert predictions_path(compare_world["models"] / "reference-elu.json").is_file()


@pytest.mark.parametrize("card, kind", [({"arch": "ensemble"}, "ensemble"), ({"checkpoint": None}, "reference"),
                                        ({"checkpoint": "x.pt"}, "shipped"), ({"kind": "reference"}, "reference"),
                                        ({"kind": "experiment", "checkpoint": None}, "experiment")])
def test_cards_written_before_kinds_get_theirs_from_their_fields(card, kind):
    assert card_kind(card) == kind


def test_a_renamed_model_still_loads_by_its_old_name(tmp_path, tiny_checkpoint):
    import shutil

    from fer_core.errors import CheckpointError
    from fer_core.models.loading import file_identity, load_model
    from fer_core.paths import PROJECT_ROOT
    shutil.copy(tiny_checkpoint, tmp_path / "new-name.pt")
    (tmp_path / "new-name.json").write_text(json.dumps({"name": "new-name", "formerly": ["old-name"]}))
    (tmp_path / "foreign.json").write_text("[1, 2]")  # any other .json is passed over
    assert file_identity(tmp_path / "old-name.pt") == file_identity(tmp_path / "new-name.pt")
    load_model(tmp_path / "old-name.pt")
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "never-was.pt")
    shipped = PROJECT_ROOT / "models"  # the names the shipped models had before the model zoo
    assert load_model(shipped / "e80-fer_vgg_small.pt") is not None
    assert len(load_model(shipped / "ensemble-4x-fer_vgg_small.json").members) == 4


def test_float16_storage_keeps_every_prediction_even_near_ties():
    from fer_core.cards.predictions import to_float16
    probs = np.full((3, 7), 0.1, np.float32)
    probs[0, 2], probs[0, 5] = 0.20001, 0.20000  # equal once rounded to float16
    probs[1, 6] = 0.4
    probs[2, :] = 1 / 7
    probs[2, 3] += 1e-6
    half = to_float16(probs)
    assert half.dtype == np.float16 and (half.argmax(1) == probs.argmax(1)).all()
    np.testing.assert_allclose(half, probs, atol=1e-3)


def test_a_damaged_predictions_file_is_no_predictions(tmp_path):
    (tmp_path / "x.predictions.npz").write_bytes(b"not numpy")
    assert load_predictions(tmp_path / "x.predictions.npz") is None
    assert load_predictions(tmp_path / "missing.npz") is None


def leaky_zip(make_kaggle_zip):
    """The tiny dataset plus one PrivateTest image that is a byte copy of a Training image."""
    rel, blob, label = next(e for e in kaggle_entries() if e[0].startswith("train/"))
    folder = rel.split("/")[1]
    return make_kaggle_zip(extra=[(f"test/{folder}/PrivateTest_copy.jpg", blob, label)])


def test_the_test_image_copied_from_training_is_the_one_left_out(make_kaggle_zip, tmp_path):
    from fer_core.data.fer2013 import load_dataset
    dataset = load_dataset(leaky_zip(make_kaggle_zip))
    leaked = leaked_test_mask(dataset, cache_dir=tmp_path)
    assert leaked.sum() == 1 and dataset["test"].ids[leaked][0].endswith("PrivateTest_copy.jpg")
    assert (leaked_test_mask(dataset, cache_dir=tmp_path) == leaked).all()  # from the cache
    labels = dataset["test"].labels
    wrong_only_on_the_copy = np.where(leaked, (labels + 1) % 7, labels)
    report = clean_report(labels, wrong_only_on_the_copy, leaked)
    assert report == {**report, "n": len(labels) - 1, "removed": 1, "accuracy": 1.0}


def test_evaluate_json_reports_clean_privatetest(make_kaggle_zip, tiny_checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(leaky_zip(make_kaggle_zip)),
                 "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clean"]["removed"] == 1 and report["clean"]["n"] == report["n"] - 1
    assert 0 <= report["clean"]["accuracy"] <= 1 and "byte-identical" in report["clean"]["rule"]


def stored(labels: dict, seed: int) -> CardPredictions:
    rng = np.random.default_rng(seed)
    probs = {(s, m): rng.dirichlet(np.ones(7), len(labels[s])).astype(np.float32)
             for s in ("val", "test") for m in ("plain", "tta")}
    return CardPredictions(probs, labels, np.zeros(len(labels["test"]), bool))


def test_an_ensemble_of_stored_predictions_needs_no_dataset():
    labels = {"val": np.arange(14) % 7, "test": np.arange(21) % 7}
    a, b = stored(labels, 0), stored(labels, 1)
    metrics, averaged = ensemble_metrics([a, b], None, tta_views=10)
    mean = (a.get("test", True) + b.get("test", True)) / 2
    assert metrics["test"]["tta"]["accuracy"] == pytest.approx((mean.argmax(1) == labels["test"]).mean())
    assert metrics["test"]["plain"]["members"] == 2 and metrics["test"]["tta"]["clean"]["removed"] == 0
    np.testing.assert_allclose(averaged.get("test", True), mean, atol=1e-6)
    other = stored({"val": labels["val"], "test": (labels["test"] + 1) % 7}, 2)
    with pytest.raises(FERError, match="another dataset"):
        ensemble_metrics([a, other], None, tta_views=10)


def test_the_ensemble_cli_card_describes_its_float16_members_exactly(compare_world, tmp_path, capsys):
    checkpoints = [str(compare_world["runs"] / n / "best.pt") for n in ("small-a", "elu-b")]
    assert main(["ensemble", *checkpoints, "--data", str(compare_world["data"]), "--tta-views", "2",
                 "--name", "duo", "--models-dir", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "duo.json").read_text())
    assert card["kind"] == "ensemble" and card["metrics_from"] == "the shipped files in models/"
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(tmp_path / "duo.json"), "--data", str(compare_world["data"]),
                 "--split", "test", "--tta", "--tta-views", "2", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["confusion_matrix"] == card["metrics"]["test"]["tta"]["confusion_matrix"]
    assert evaluated["clean"] == card["metrics"]["test"]["tta"]["clean"]
    assert load_predictions(tmp_path / card["predictions"]) is not None


def test_mcnemar_on_known_counts():
    a = np.array([True] * 10 + [False] * 0 + [True] * 5 + [False] * 5)
    b = np.array([False] * 10 + [True] * 0 + [True] * 5 + [False] * 5)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b, result.both, result.neither) == (10, 0, 5, 5)
    assert result.p_value == pytest.approx(2 * 0.5 ** 10) and result.significant
    words = result.in_words("A", "B")
    assert "A is ahead by 50.00 points" in words and "is statistically significant" in words
    even = mcnemar(np.array([True, False, True]), np.array([False, True, True]))
    assert even.p_value == 1.0 and not even.significant and "Neither model is ahead" in even.in_words("A", "B")
    close = mcnemar(np.array([True] * 6 + [False] * 4), np.array([False] * 6 + [True] * 4))
    assert not close.significant and "not statistically significant" in close.in_words("A", "B")
    with pytest.raises(ValueError, match="different images"):
        mcnemar(np.ones(3, bool), np.ones(4, bool))


def test_a_card_names_the_dataset_also_when_it_came_from_fer_data(make_kaggle_zip, tmp_path, monkeypatch):
    from fer_core.cards.model_cards import make_card
    from fer_core.training.config import TrainConfig
    from fer_core.training.train import main as train
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip(per_class=(4, 2, 2))))
    run = train(TrainConfig(arch="fer_vgg_small", out=str(tmp_path / "runs"), name="env", epochs=1, batch_size=8,
                            tta_views=2))
    card = make_card(run, "env")
    assert card["provenance"]["dataset"] == "archive.zip" and "data" not in card["train_config"]

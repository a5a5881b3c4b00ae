"""Ensembles: averaged probabilities, their metrics against a hand computation, save and load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_core.cards.ensembles import average_probabilities, ensemble_report, save_ensemble
from fer_core.cards.model_cards import headline, load_cards
from fer_core.errors import CheckpointError, FERError
from fer_core.labels import EMOTIONS
from fer_core.models.checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint
from fer_core.models.ensemble import EnsembleModel, is_ensemble_file, list_ensembles, load_ensemble
from fer_core.models.loading import load_model
from fer_core.models.registry import count_parameters, create_model


def probs(rows):
    """Rows of leading class probabilities padded with zeros to the 7 emotions."""
    out = np.zeros((len(rows), len(EMOTIONS)))
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def test_ensemble_metrics_equal_a_hand_computed_result():
    a = probs([[0.6, 0.4], [0.2, 0.8], [0.5, 0.1, 0.4], [0.3, 0.7]])
    b = probs([[0.2, 0.8], [0.4, 0.6], [0.1, 0.1, 0.8], [0.9, 0.1]])
    labels = np.array([0, 1, 2, 0])
    # averages: [.4 .6] -> 1, [.3 .7] -> 1, [.3 .1 .6] -> 2, [.6 .4] -> 0
    np.testing.assert_allclose(average_probabilities([a, b])[2, :3], [0.3, 0.1, 0.6])
    report = ensemble_report([a, b], labels)
    assert report["accuracy"] == pytest.approx(3 / 4)
    pc = report["per_class"]
    assert (pc["angry"]["precision"], pc["angry"]["recall"]) == (1.0, 0.5)
    assert (pc["disgust"]["precision"], pc["disgust"]["recall"]) == (0.5, 1.0)
    assert pc["angry"]["f1"] == pytest.approx(2 / 3) and pc["disgust"]["f1"] == pytest.approx(2 / 3)
    assert pc["fear"]["f1"] == 1.0 and pc["angry"]["support"] == 2
    assert report["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 7)  # absent classes count as 0
    cm = np.array(report["confusion_matrix"])
    assert cm[0, :3].tolist() == [1, 1, 0] and cm[1, :3].tolist() == [0, 1, 0] and cm[2, :3].tolist() == [0, 0, 1]
    assert cm.sum() == 4 and report["members"] == 2


def test_weights_and_shape_mismatch():
    a, b = probs([[1.0, 0.0]]), probs([[0.0, 1.0]])
    np.testing.assert_allclose(average_probabilities([a, b], weights=[3, 1])[0, :2], [0.75, 0.25])
    with pytest.raises(ValueError, match="shape"):
        average_probabilities([a, probs([[1.0], [1.0]])])


def _checkpoint(path, seed):
    torch.manual_seed(seed)
    model = create_model("fer_vgg_small")
    save_checkpoint(path, {"arch": "fer_vgg_small", "model_config": {}, "labels": list(EMOTIONS),
                           "state_dict": model.state_dict(), "epoch": 1, "val_accuracy": 0.5, "train_config": {}})
    return path


@pytest.fixture
def two_checkpoints(tmp_path):
    return [_checkpoint(tmp_path / "a.pt", 0), _checkpoint(tmp_path / "b.pt", 1)]


def test_ensemble_model_softmax_is_the_mean_of_member_softmaxes(two_checkpoints):
    members = [model_from_checkpoint(load_checkpoint(p)) for p in two_checkpoints]
    x = torch.randn(3, 1, 48, 48)
    with torch.no_grad():
        expected = torch.stack([m(x).softmax(-1) for m in members]).mean(0)
        got = EnsembleModel(members).eval()(x).softmax(-1)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_saved_ensemble_is_a_model_card_and_loads_for_prediction(two_checkpoints, tmp_path):
    models = tmp_path / "models"
    report = ensemble_report([probs([[1.0]])] * 2, np.array([0]))
    metrics = {s: {"plain": report, "tta": report} for s in ("val", "test")}
    members = [{"name": p.stem, "checkpoint": p, "arch": "fer_vgg_small", "parameters": 10} for p in two_checkpoints]
    card_path = save_ensemble("duo", members, metrics, tta_views=2, models_dir=models)
    assert is_ensemble_file(card_path) and list_ensembles(models) == [("duo", card_path)]
    card = load_cards(models)[0]
    assert card["arch"] == "ensemble" and card["parameters"] == 20 and headline(card)["test_accuracy"] == 1.0
    assert all((models / m["checkpoint"]).is_file() for m in card["members"])  # self-contained copies
    assert not list(models.glob("*.pt"))  # members live in duo.members/, not beside the shipped models
    with pytest.raises(FERError, match="already exists"):
        save_ensemble("duo", members, metrics, tta_views=2, models_dir=models)
    model = load_model(card_path)
    assert isinstance(model, EnsembleModel) and len(model.members) == 2
    assert not isinstance(load_model(two_checkpoints[0]), EnsembleModel)

    (models / card["members"][1]["checkpoint"]).write_bytes(b"damaged")
    with pytest.raises(CheckpointError, match="1-b.pt"):
        load_ensemble(card_path)
    with pytest.raises(CheckpointError, match="not a saved ensemble"):
        load_ensemble(tmp_path / "nothing.json")


def test_save_refuses_bad_names_and_single_members(two_checkpoints, tmp_path):
    member = {"name": "a", "checkpoint": two_checkpoints[0]}
    with pytest.raises(FERError, match="two members"):
        save_ensemble("one", [member], {}, 1, models_dir=tmp_path)
    with pytest.raises(FERError, match="name"):
        save_ensemble("../x", [member, member], {}, 1, models_dir=tmp_path)


def test_an_ensemble_predicts_faces_through_the_recognizer(two_checkpoints, tmp_path):
    """What the Predict page does with a saved ensemble: load_model, then EmotionRecognizer."""
    from fer_core.inference.recognizer import EmotionRecognizer
    from tests.sample_files import astronaut_rgb
    members = [{"name": p.stem, "checkpoint": p} for p in two_checkpoints]
    card_path = save_ensemble("duo", members, {}, tta_views=2, models_dir=tmp_path)
    rec = EmotionRecognizer(load_model(card_path), source=str(card_path))
    [face] = rec.predict(astronaut_rgb(), tta=True, views=2, detect=False)
    assert face.label in EMOTIONS and abs(sum(face.probabilities.values()) - 1) < 1e-4


def test_evaluate_cli_loads_a_saved_ensemble(two_checkpoints, tmp_path, make_kaggle_zip, capsys):
    """`evaluate --checkpoint models/NAME.json`: one loader for checkpoints and ensembles."""
    import json

    from fer_core.cli import main
    members = [{"name": p.stem, "checkpoint": p} for p in two_checkpoints]
    card_path = save_ensemble("duo", members, {}, tta_views=2, models_dir=tmp_path)
    assert main(["evaluate", "--checkpoint", str(card_path), "--data", str(make_kaggle_zip()), "--split", "test",
                 "--tta", "--tta-views", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 21 and report["tta_views"] == 2 and report["checkpoint"] == str(card_path)


def test_ensemble_cli_adds_up_its_members_runs(compare_world, tmp_path, capsys):
    """A card saved from runs' best.pt files says what the members cost: their training time, epochs, parameters
    and hardware, read from the run folders."""
    import json

    from fer_core.cli import main
    from fer_core.rundir.folder import load_eval
    runs = [compare_world["runs"] / name for name in ("small-a", "elu-b")]
    assert main(["ensemble", *(str(r / "best.pt") for r in runs), "--data", str(compare_world["data"]),
                 "--tta-views", "2", "--name", "duo", "--models-dir", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "duo.json").read_text())
    evals = [load_eval(r / "eval.json")[0] for r in runs]
    assert card["training_seconds"] == pytest.approx(sum(e["training_seconds"] for e in evals))
    assert card["epochs_trained"] == 2 and [m["name"] for m in card["members"]] == ["small-a", "elu-b"]
    assert [m["arch"] for m in card["members"]] == ["fer_vgg_small", "elu_cnn"]
    assert card["parameters"] == sum(count_parameters(create_model(a)) for a in ("fer_vgg_small", "elu_cnn"))
    assert card["hardware"] == evals[0]["device"]


def test_an_ensemble_saved_under_fer_models_dir_reaches_predict_and_live(two_checkpoints, tmp_path, monkeypatch):
    """Compare saves into paths.models_dir(); Predict and Live list models from the same place."""
    from dashboard.shared.model_picker import model_choices
    from fer_core.paths import models_dir
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "my-models"))
    members = [{"name": p.stem, "checkpoint": p} for p in two_checkpoints]
    card = save_ensemble("duo", members, {}, tta_views=2, models_dir=models_dir())
    assert card.parent == tmp_path / "my-models"
    assert ("Ensemble: duo", card) in model_choices()
    assert [name for name, _ in list_ensembles()] == ["duo"]

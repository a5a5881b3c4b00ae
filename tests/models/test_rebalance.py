"""Logit adjustment of a shipped model (`rebalance`): the shift, the choice of tau, the new card, the refusals."""
import shutil

import numpy as np
import pytest
import torch

from fer_core.cards.rebalanced import ship_rebalanced
from fer_core.cli import main
from fer_core.errors import CheckpointError, FERError
from fer_core.models.checkpoints import load_checkpoint, model_from_checkpoint
from fer_core.models.logit_adjust import adjusted_probabilities, choose_tau, prior_shift, write_adjusted
from fer_core.paths import read_json_object

COUNTS = [3995, 436, 4097, 7215, 4830, 3171, 4965]  # FER2013 Training


def test_tau_zero_changes_nothing_and_tau_one_divides_by_the_prior():
    probs = np.random.default_rng(0).dirichlet(np.ones(7), size=20)
    assert np.allclose(adjusted_probabilities(probs, COUNTS, 0.0), probs)
    prior = np.array(COUNTS) / sum(COUNTS)
    expected = probs / prior
    assert np.allclose(adjusted_probabilities(probs, COUNTS, 1.0), expected / expected.sum(1, keepdims=True))
    with pytest.raises(ValueError, match="positive count"):
        prior_shift([1, 0, 1, 1, 1, 1, 1], 0.5)


def test_tau_is_chosen_where_rare_classes_are_read_right_and_ties_keep_the_smaller():
    # disgust (1) images the model calls angry (0) by a margin the prior explains: adjustment fixes them
    probs = np.full((10, 7), 0.05)
    probs[:, 0], probs[:, 1] = 0.4, 0.3
    labels = np.ones(10, dtype=int)
    tau, accuracy = choose_tau(probs, labels, COUNTS)
    assert accuracy[0.0] == 0.0 and accuracy[tau] == 1.0 and tau == min(t for t, a in accuracy.items() if a == 1.0)
    assert choose_tau(probs, np.zeros(10, dtype=int), COUNTS)[0] == 0.0  # already right: no shift


def test_the_adjusted_checkpoint_shifts_only_the_output_bias_and_refuses_a_second_shift(tiny_checkpoint, tmp_path):
    out = write_adjusted(tiny_checkpoint, tmp_path / "adjusted.pt", COUNTS, 0.5)
    before, after = load_checkpoint(tiny_checkpoint), load_checkpoint(out)
    changed = [k for k in before["state_dict"] if not torch.equal(before["state_dict"][k], after["state_dict"][k])]
    assert changed == ["classifier.7.bias"] and after["state_dict"][changed[0]].dtype == torch.float16
    x = torch.rand(3, 1, 48, 48)
    with torch.no_grad():
        shift = model_from_checkpoint(after)(x) - model_from_checkpoint(before)(x)
    assert torch.allclose(shift, torch.from_numpy(prior_shift(COUNTS, 0.5)).float().expand(3, 7), atol=2e-3)
    assert after["logit_adjustment"]["tau"] == 0.5
    with pytest.raises(CheckpointError, match="already adjusted"):
        write_adjusted(out, tmp_path / "twice.pt", COUNTS, 0.5)


@pytest.fixture
def world_models(compare_world, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(compare_world["models"], models)
    return models, str(compare_world["data"])


def test_rebalance_ships_a_measured_model_whose_card_says_what_was_adjusted(world_models):
    models, data = world_models
    card_path = ship_rebalanced("reference-small", "balanced", models, data=data)
    card = read_json_object(card_path, "model card")
    adjustment = card["logit_adjustment"]
    assert adjustment["source"] == "reference-small" and adjustment["tau"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    assert "PublicTest" in adjustment["selected_on"] and len(adjustment["public_test_accuracy"]) == 5
    assert card["checkpoint"] == "balanced.pt" and card["kind"] == "shipped" and "real_photos" not in card
    assert card["metrics_from"] == "the shipped file in models/" and (models / "balanced.predictions.npz").is_file()
    assert load_checkpoint(models / "balanced.pt")["logit_adjustment"]["tau"] == adjustment["tau"]
    with pytest.raises(FERError, match="already rebalanced"):
        ship_rebalanced("balanced", "again", models, data=data)


def test_rebalance_refuses_before_reading_the_dataset(world_models, tmp_path):
    models, _ = world_models
    missing_data = str(tmp_path / "no-such.zip")  # a refusal must come before the dataset is looked for
    with pytest.raises(FERError, match="already exists"):
        ship_rebalanced("reference-small", "reference-small", models, data=missing_data)
    with pytest.raises(FERError, match="not a shipped network"):
        ship_rebalanced("reference-elu", "new", models, data=missing_data)
    with pytest.raises(FERError, match="no shipped model 'nothing'"):
        ship_rebalanced("nothing", "new", models, data=missing_data)
    with pytest.raises(FERError, match="between 0"):
        ship_rebalanced("reference-small", "new", models, tau=-1, data=missing_data)
    assert not (models / "new.pt").exists()


def test_the_rebalance_command_says_what_it_chose(world_models, monkeypatch, capsys):
    models, data = world_models
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    assert main(["rebalance", "reference-small", "--name", "given", "--tau", "0.25", "--data", data]) == 0
    assert "tau 0.25, as given" in capsys.readouterr().out
    assert main(["rebalance", "reference-small", "--name", "../escape", "--data", data]) == 2

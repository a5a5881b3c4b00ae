"""Calibration: temperature scaling recovers a known temperature, never changes the top class, is stored in
the cards and applied by EmotionRecognizer; a model without a temperature stays uncalibrated and says so."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from fer_core.cli import main
from fer_core.evaluation.calibration import (calibrate, expected_calibration_error, fit_temperature, reliability,
                                             scaled)


def synthetic(temperature: float, n: int = 6000, seed: int = 0):
    """Labels drawn from softmax(z), and the probabilities of a model that is `temperature` times too sure."""
    rng = np.random.default_rng(seed)
    z = torch.from_numpy(rng.normal(0, 2.0, (n, 7)).astype(np.float32))
    labels = torch.multinomial(z.softmax(-1), 1, generator=torch.Generator().manual_seed(seed)).squeeze(1).numpy()
    return (z * temperature).softmax(-1).numpy(), labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_fitting_recovers_a_known_temperature(temperature):
    probs, labels = synthetic(temperature)
    assert fit_temperature(probs, labels) == pytest.approx(temperature, rel=0.08)


def test_scaling_lowers_the_error_and_keeps_every_top_class():
    val, val_labels = synthetic(2.5, seed=1)
    test, test_labels = synthetic(2.5, seed=2)
    c = calibrate(val, val_labels, test, test_labels)
    assert c["test_ece_calibrated"] < c["test_ece"] / 2 and c["fitted_on"] == "val"
    assert (scaled(test, c["temperature"]).argmax(1) == test.argmax(1)).all()


def test_ece_and_the_reliability_bins_agree():
    probs, labels = synthetic(2.0, seed=3)
    rows = reliability(probs, labels)
    by_hand = sum(r["count"] * abs(r["confidence"] - r["accuracy"]) for r in rows) / len(labels)
    assert expected_calibration_error(probs, labels) == pytest.approx(by_hand, abs=1e-4)
    assert sum(r["count"] for r in rows) == len(labels)


def test_a_model_without_a_temperature_is_uncalibrated_and_says_so(tiny_checkpoint, tmp_path):
    from fer_core.inference.recognizer import EmotionRecognizer
    from fer_core.inference.faces import whole_image_face
    model = tmp_path / "old.pt"
    shutil.copy(tiny_checkpoint, model)
    rec = EmotionRecognizer.load(model)
    assert rec.temperatures == {} and rec.calibration.startswith("uncalibrated")
    (tmp_path / "old.json").write_text(json.dumps({"name": "old", "notes": "a card from before calibration"}))
    assert EmotionRecognizer.load(model).calibration.startswith("uncalibrated")

    card = {"name": "old", "calibration": {"plain": {"temperature": 2.0}, "tta": {"temperature": 1.5}}}
    (tmp_path / "old.json").write_text(json.dumps(card))
    calibrated, raw = EmotionRecognizer.load(model), EmotionRecognizer.load(model, calibrated=False)
    assert calibrated.temperatures == {"plain": 2.0, "tta": 1.5} and "calibrated on PublicTest" in calibrated.calibration
    rgb = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    face = [whole_image_face(rgb)]
    p_cal, p_raw = (np.array(list(r.classify(rgb, face)[0].probabilities.values())) for r in (calibrated, raw))
    assert p_cal.argmax() == p_raw.argmax() and p_cal.max() < p_raw.max()  # T = 2 softens, the label stays


def test_shipping_stores_the_temperatures_and_calibrate_writes_them_into_older_cards(compare_world, tmp_path,
                                                                                    capsys):
    models = tmp_path / "models"
    shutil.copytree(compare_world["models"], models)
    card = json.loads((models / "reference-small.json").read_text())
    assert set(card["calibration"]) == {"plain", "tta"} and card["calibration"]["tta"]["fitted_on"] == "val"
    del card["calibration"]
    (models / "reference-small.json").write_text(json.dumps(card))
    assert main(["calibrate", "--models-dir", str(models), "--write"]) == 0
    assert "reference-small" in capsys.readouterr().out
    rewritten = json.loads((models / "reference-small.json").read_text())
    assert rewritten["calibration"]["plain"]["temperature"] > 0 and rewritten["metrics"] == card["metrics"]

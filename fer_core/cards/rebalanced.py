"""A shipped model rebalanced towards rare emotions (`python -m fer_core rebalance MODEL --name NAME`).

The new model is the shipped one with its output bias shifted by models/logit_adjust.py; tau is chosen on
PublicTest (from the card's per-image predictions, TTA) unless given. The new card keeps the source's training
record, says what was adjusted and why, and is measured afresh on the adjusted file like any shipped model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.fer2013 import load_dataset
from ..errors import FERError
from ..models.logit_adjust import TAUS, choose_tau, write_adjusted
from ..models.card import ModelCard
from ..paths import named_path, publish
from ..paths import models_dir as default_models_dir
from .model_cards import SHIPPED, card_files, check_free, measure_card, write_card
from .predictions import load_predictions, predictions_path

REFERENCE = "Menon et al., Long-tail learning via logit adjustment, ICLR 2021"
# what a new card does not inherit: figures of the source's own weights
MEASURED = ("metrics", "metrics_from", "metrics_precision", "predictions", "calibration", "real_photos", "ferplus",
            "speed", "beyond_fer2013", "formerly")


def ship_rebalanced(source: str, name: str, models_dir: str | Path | None = None, tau: float | None = None,
                    data: str | None = None, replace: bool = False, progress=None) -> Path:
    """models/<name>.pt and its card: the shipped model `source` logit-adjusted with `tau` (None: chosen on
    PublicTest from TAUS). Names and the source are checked before the dataset is read; as `ship`, an existing
    model is replaced only with `replace` (kept in models/.replaced/)."""
    models_dir = Path(models_dir or default_models_dir())
    source_card_path = named_path(models_dir, source, ".json", "model name")
    named_path(models_dir, name, ".json", "model name")
    check_free(models_dir, name, True, replace)
    if not source_card_path.is_file():
        raise FERError(f"no shipped model '{source}' in {models_dir}")
    source_model = ModelCard.read(source_card_path)
    source_card = source_model.fields
    if source_model.kind != SHIPPED or not source_model.checkpoint:
        raise FERError(f"'{source}' is not a shipped network with weights (an ensemble or a reference card): "
                       f"rebalance a single shipped model")
    if source_card.get("logit_adjustment"):
        raise FERError(f"'{source}' is already rebalanced (tau {source_card['logit_adjustment'].get('tau')}): "
                       f"rebalance the model it was made from")
    if tau is not None and not 0 <= tau <= 2:
        raise FERError(f"--tau {tau}: give a value between 0 (no change) and 2")
    dataset = load_dataset(data)
    counts = np.asarray(dataset["train"].class_counts())
    adjustment = {"tau": tau, "prior": "FER2013 Training's class counts", "counts": counts.tolist(),
                  "source": source,
                  "source_created": source_card.get("created"), "reference": REFERENCE}
    if tau is None:
        adjustment.update(_chosen_on_public_test(source_card_path, dataset, counts))
    card = {k: v for k, v in source_card.items() if k not in MEASURED}
    card.update(name=name, checkpoint=f"{name}.pt", logit_adjustment=adjustment,
                notes=(f"{source} with its decisions rebalanced towards rare emotions (logit adjustment, tau "
                       f"{adjustment['tau']}). " + str(source_card.get("notes") or "")).strip())
    with publish(models_dir, card_files(name, weights=True), f"shipping '{name}' to") as stage:
        write_adjusted(source_card_path.with_name(source_model.checkpoint), stage / f"{name}.pt", counts,
                       adjustment["tau"])
        write_card(stage / f"{name}.json", card)
        measure_card(stage / f"{name}.json", dataset, progress=progress)
    return models_dir / f"{name}.json"


def _chosen_on_public_test(card_path: Path, dataset, counts) -> dict:
    predictions = load_predictions(predictions_path(card_path))
    if predictions is None or not predictions.matches("val", dataset["val"].labels):
        raise FERError(f"{card_path.name} has no per-image predictions for this dataset's PublicTest to choose tau "
                       f"on: give --tau, or measure the card again")
    tau, accuracy = choose_tau(predictions.get("val", tta=True), predictions.labels["val"], counts, TAUS)
    return {"tau": tau, "selected_on": "PublicTest accuracy with TTA (the source card's predictions)",
            "public_test_accuracy": {str(t): round(a, 4) for t, a in accuracy.items()}}

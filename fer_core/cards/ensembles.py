"""Ensembles as cards: the metrics of averaged member probabilities, and saving an ensemble to models/.

The network that averages its members, and reading a saved ensemble back, live in models/ensemble.py; this
module builds the card (`models/<name>.json`, kind "ensemble") and copies the members in float16 beside it.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..data.leakage import leaked_test_mask
from ..errors import FERError
from ..evaluation.metrics import metrics_report, reports_from_predictions
from ..evaluation.prediction_cache import predictions
from ..models.checkpoints import export_half
from ..models.card import ENSEMBLE_ARCH
from ..models.ensemble import MAX_MEMBERS
from ..paths import check_name, named_path, path_inside, publish
from ..paths import models_dir as default_models_dir
from .model_cards import ENSEMBLE, card_files, new_card, write_card
from .predictions import SPLITS, CardPredictions, calibration_of, predictions_path, save_predictions


def average_probabilities(member_probs: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """(N, K) weighted mean of the members' (N, K) probabilities (equal weights by default)."""
    if len(member_probs) < 1:
        raise ValueError("an ensemble needs at least one member")
    shapes = {p.shape for p in member_probs}
    if len(shapes) != 1:
        raise ValueError(f"members' predictions differ in shape: {sorted(shapes)}")
    w = np.ones(len(member_probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    return np.tensordot(w / w.sum(), np.stack(member_probs), axes=1)


def ensemble_report(member_probs: list[np.ndarray], labels: np.ndarray, views: int = 1) -> dict:
    """The evaluate contract (metrics_report) for the averaged probabilities, plus the TTA setting."""
    report = metrics_report(labels, average_probabilities(member_probs).argmax(1))
    report.update(tta=views > 1, tta_views=views, members=len(member_probs))
    return report


def ensemble_metrics(members: list, dataset, tta_views: int, progress=None) -> tuple[dict, CardPredictions]:
    """The metrics {"val"/"test": {"plain"/"tta": report}} of the members' averaged probabilities, and those.

    A member is a checkpoint or saved ensemble (a path: predicted through the on-disk cache, so
    re-evaluating a combination is instant) or a card's stored CardPredictions (no network; its TTA
    probabilities are the card's own views). `dataset` may be None when every member is stored.
    `progress(done, total)` counts predicted image-views over the members that run a network.
    """
    stored = [m for m in members if isinstance(m, CardPredictions)]
    if dataset is None and len(stored) < len(members):
        raise FERError("members without stored predictions need the dataset")
    labels = {split: (dataset[split].labels if dataset is not None else stored[0].labels[split]) for split in SPLITS}
    for member in stored:
        if not all(member.matches(split, labels[split]) for split in SPLITS):
            raise FERError("a member's stored predictions were made on another dataset (its labels differ)")
    leaked = leaked_test_mask(dataset) if dataset is not None else next(
        (m.leaked for m in stored if m.leaked is not None), None)
    networks = [m for m in members if not isinstance(m, CardPredictions)]
    total = sum(len(labels[split]) * views for split in SPLITS for views in (1, tta_views)) * len(networks)
    done, averaged = 0, {}
    for split in SPLITS:
        for mode, views in (("plain", 1), ("tta", tta_views)):
            member_probs = []
            for member in members:
                if isinstance(member, CardPredictions):
                    member_probs.append(member.get(split, mode == "tta"))
                    continue
                step = progress and (lambda n, _, base=done, v=views: progress(base + n * v, total))
                member_probs.append(predictions(member, dataset, split, views, progress=step))
                done += len(labels[split]) * views
                if progress:
                    progress(done, total)
            averaged[(split, mode)] = average_probabilities(member_probs).astype(np.float32)
    metrics = reports_from_predictions(averaged, labels, tta_views, leaked)
    for split_reports in metrics.values():
        for report in split_reports.values():
            report["members"] = len(members)
    return metrics, CardPredictions(averaged, labels, leaked)


def check_ensemble_name(name: str, models_dir: str | os.PathLike, overwrite: bool = False) -> None:
    """Before any evaluation: the name is plain, its files stay inside models_dir (a `<name>.members` link
    pointing elsewhere is refused) and no model of that name exists unless `overwrite`."""
    models_dir = Path(models_dir)
    named_path(models_dir, name, ".json", "ensemble name")
    path_inside(models_dir, f"{name}.members", "ensemble members folder")
    taken = [f for f in (f"{name}.json", f"{name}.pt") if (models_dir / f).exists()]
    if taken and not overwrite:
        raise FERError(f"a model named '{name}' already exists in {models_dir}: choose another name")


def save_ensemble(name: str, members: list[dict], metrics: dict, tta_views: int,
                  models_dir: str | os.PathLike | None = None, notes: str = "", overwrite: bool = False,
                  predictions: CardPredictions | None = None, finish=None) -> Path:
    """Write models/<name>.json and float16 copies of the members; returns the card path.

    `members`: dicts with `name` and `checkpoint` (a path), plus optional arch, parameters,
    training_seconds, epochs_trained, hardware. `metrics`: {"val"/"test": {"plain"/"tta": report}},
    measured with the members' original checkpoints; `predictions` (the averaged probabilities behind
    them) are written beside the card. `finish(card_path)` runs on the staged card before anything is
    moved into models/ (the CLI re-measures the float16 copies there with `model_cards.measure_card`).
    """
    models_dir = Path(models_dir or default_models_dir())
    check_ensemble_name(name, models_dir, overwrite)
    if not 2 <= len(members) <= MAX_MEMBERS:
        raise FERError(f"an ensemble needs at least two members and at most {MAX_MEMBERS}, not {len(members)}")
    with publish(models_dir, [f"{name}.members", *card_files(name, weights=False)], f"saving the ensemble '{name}' to"
                 ) as stage:
        entries = []
        for i, member in enumerate(members):
            rel = f"{name}.members/{i}-{check_name(_member_file_stem(member['name']), 'member name')}.pt"
            export_half(member["checkpoint"], stage / rel)
            entries.append({"name": member["name"], "arch": member.get("arch"), "checkpoint": rel,
                            "source": str(member["checkpoint"])})
        card = _ensemble_card(name, members, entries, metrics, tta_views, notes)
        path = stage / f"{name}.json"
        if predictions is not None:
            card["predictions"] = save_predictions(predictions_path(path), predictions.probs, predictions.labels,
                                                   predictions.leaked).name
            card["calibration"] = calibration_of(predictions.probs, predictions.labels)
        write_card(path, card)
        if finish is not None:
            finish(path)
    return models_dir / f"{name}.json"


def _ensemble_card(name: str, members: list[dict], entries: list[dict], metrics: dict, tta_views: int,
                   notes: str) -> dict:
    return new_card(
        ENSEMBLE, name, ENSEMBLE_ARCH,
        notes or ("average of the members' probabilities; metrics measured with the members' "
                  "original checkpoints (shipped copies are float16)"),
        members=entries,
        parameters=int(sum(m.get("parameters") or 0 for m in members)),
        checkpoint=None,
        train_config={"arch": ENSEMBLE_ARCH, "members": [m["name"] for m in members]},
        epochs_trained=int(sum(m.get("epochs_trained") or 0 for m in members)),
        metrics=metrics,
        tta_views=tta_views,
        learning_curve=[],
        training_seconds=float(sum(m.get("training_seconds") or 0 for m in members)),
        hardware=" + ".join(sorted({str(m.get("hardware")) for m in members if m.get("hardware")})) or "-",
    )


def _member_file_stem(name: object) -> str:
    """A member's display name made into a plain file name (run names already are; card names may not be)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-")[:60]
    return stem or "member"

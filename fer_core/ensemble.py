"""Ensembles: several checkpoints whose class probabilities are averaged.

A saved ensemble is a model card (`models/<name>.json`, arch "ensemble") whose `members` name
float16 copies of the member checkpoints in `models/<name>.members/`, so it is self-contained:

    model = loading.load_model("models/my-ensemble.json")   # the one loader of every kind of model
    EmotionRecognizer(model, source="models/my-ensemble.json")

The ensemble module returns log-probabilities, so softmax (what every predictor applies) gives
exactly the averaged member probabilities, and TTA works unchanged.
"""
from __future__ import annotations

import json
import os
import platform
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import MAX_CHECKPOINT_BYTES, export_half, load_checkpoint, model_from_checkpoint
from .errors import CheckpointError, FERError
from .card_predictions import SPLITS, CardPredictions, predictions_path, save_predictions
from .evaluate import metrics_report, reports_from_predictions
from .model_cards import FORMAT as CARD_FORMAT
from .model_cards import card_files
from .paths import (UnsafePathError, check_name, existing_file, is_regular_file, named_path, path_inside, publish, shown,
                    write_text_atomic)
from .paths import models_dir as default_models_dir

ENSEMBLE_ARCH = "ensemble"
MAX_CARD_BYTES = 16 * 2**20


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
    from .leakage import leaked_test_mask
    from .prediction_cache import predictions
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


class EnsembleModel(nn.Module):
    """Averages the softmax of its members; forward returns log of that average (see module doc)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([m(x).float().softmax(-1) for m in self.members]).mean(0)
        return probs.clamp_min(1e-12).log()


# ----------------------------------------------------------------------------- saved ensembles

def is_ensemble_file(path: str | os.PathLike) -> bool:
    path = Path(path)
    if path.suffix != ".json" or not is_regular_file(path):
        return False
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            return False
        card = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(card, dict) and card.get("arch") == ENSEMBLE_ARCH


def list_ensembles(models_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(name, card path) of every saved ensemble in models_dir (default: paths.models_dir())."""
    folder = Path(models_dir or default_models_dir())
    return [(p.stem, p) for p in sorted(folder.glob("*.json")) if is_ensemble_file(p)]


def member_paths(card_path: str | os.PathLike) -> list[Path]:
    """The member checkpoints a saved ensemble's card names, each checked before anything reads it: a
    regular file of a checkpoint's size inside the card's folder. A malformed card is one CheckpointError."""
    card_path = existing_file(card_path, "ensemble card", MAX_CARD_BYTES, CheckpointError)
    try:
        card = json.loads(card_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"ensemble card {shown(card_path)} is not readable JSON") from None
    members = card.get("members") if isinstance(card, dict) else None
    if not isinstance(members, list) or not all(isinstance(m, dict) and isinstance(m.get("checkpoint"), str)
                                                for m in members):
        raise CheckpointError(f"ensemble card {shown(card_path)} is malformed: 'members' must be a list of "
                              f"{{\"checkpoint\": \"<file>\"}} entries")
    paths = []
    for member in members:
        try:
            path = path_inside(card_path.parent, member["checkpoint"], "ensemble member")
        except UnsafePathError as exc:
            raise CheckpointError(f"{exc} (in {shown(card_path.name)}: members must lie in the card's folder)") from None
        paths.append(existing_file(path, "ensemble member", MAX_CHECKPOINT_BYTES, CheckpointError))
    return paths


def load_ensemble(card_path: str | os.PathLike, device: str | torch.device = "cpu") -> EnsembleModel:
    """The EnsembleModel of a saved ensemble; a missing or damaged member raises CheckpointError naming it."""
    card_path = Path(card_path)
    if not is_ensemble_file(card_path):
        raise CheckpointError(f"{card_path} is not a saved ensemble (a models/<name>.json with arch 'ensemble')")
    paths = member_paths(card_path)
    if not paths:
        raise CheckpointError(f"ensemble {card_path} lists no members")
    return EnsembleModel([model_from_checkpoint(load_checkpoint(p), device) for p in paths]).to(device).eval()


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
    named_path(models_dir, name, ".json", "ensemble name")
    if len(members) < 2:
        raise FERError("an ensemble needs at least two members")
    taken = [f for f in (f"{name}.json", f"{name}.pt") if (models_dir / f).exists()]
    if taken and not overwrite:
        raise FERError(f"a model named '{name}' already exists in {models_dir}: choose another name")
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
        write_text_atomic(path, json.dumps(card, indent=2) + "\n")
        if finish is not None:
            finish(path)
    return models_dir / f"{name}.json"


def _ensemble_card(name: str, members: list[dict], entries: list[dict], metrics: dict, tta_views: int,
                   notes: str) -> dict:
    return {
        "format": CARD_FORMAT,
        "kind": "ensemble",
        "name": name,
        "arch": ENSEMBLE_ARCH,
        "members": entries,
        "parameters": int(sum(m.get("parameters") or 0 for m in members)),
        "checkpoint": None,
        "train_config": {"arch": ENSEMBLE_ARCH, "members": [m["name"] for m in members]},
        "epochs_trained": int(sum(m.get("epochs_trained") or 0 for m in members)),
        "metrics": metrics,
        "tta_views": tta_views,
        "learning_curve": [],
        "training_seconds": float(sum(m.get("training_seconds") or 0 for m in members)),
        "hardware": " + ".join(sorted({str(m.get("hardware")) for m in members if m.get("hardware")})) or "-",
        "host": f"{platform.machine()} {platform.system()}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notes": notes or ("average of the members' probabilities; metrics measured with the members' "
                           "original checkpoints (shipped copies are float16)"),
    }


def _member_file_stem(name: object) -> str:
    """A member's display name made into a plain file name (run names already are; card names may not be)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip(".-")[:60]
    return stem or "member"

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
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoints import export_half, load_checkpoint, model_from_checkpoint
from .errors import CheckpointError, FERError
from .card_predictions import SPLITS, CardPredictions, predictions_path, save_predictions
from .evaluate import metrics_report, reports_from_predictions
from .model_cards import FORMAT as CARD_FORMAT
from .paths import models_dir as default_models_dir

ENSEMBLE_ARCH = "ensemble"


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
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        card = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return isinstance(card, dict) and card.get("arch") == ENSEMBLE_ARCH


def list_ensembles(models_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(name, card path) of every saved ensemble in models_dir (default: paths.models_dir())."""
    folder = Path(models_dir or default_models_dir())
    return [(p.stem, p) for p in sorted(folder.glob("*.json")) if is_ensemble_file(p)]


def member_paths(card_path: str | os.PathLike) -> list[Path]:
    card_path = Path(card_path)
    card = json.loads(card_path.read_text())
    return [card_path.parent / m["checkpoint"] for m in card.get("members", [])]


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
                  predictions: CardPredictions | None = None) -> Path:
    """Write models/<name>.json and float16 copies of the members; returns the card path.

    `members`: dicts with `name` and `checkpoint` (a path), plus optional arch, parameters,
    training_seconds, epochs_trained, hardware. `metrics`: {"val"/"test": {"plain"/"tta": report}},
    measured with the members' original checkpoints; `predictions` (the averaged probabilities behind
    them) are written beside the card. `model_cards.measure_card` re-measures the shipped copies.
    """
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise FERError(f"'{name}' is not a usable ensemble name (letters, digits, - and _)")
    if len(members) < 2:
        raise FERError("an ensemble needs at least two members")
    models_dir = Path(models_dir or default_models_dir())
    if not overwrite and ((models_dir / f"{name}.json").exists() or (models_dir / f"{name}.pt").exists()):
        raise FERError(f"a model named '{name}' already exists in {models_dir}: choose another name")
    folder = models_dir / f"{name}.members"
    if folder.exists():
        shutil.rmtree(folder)  # members of an ensemble being replaced
    entries = []
    for i, member in enumerate(members):
        rel = Path(folder.name) / f"{i}-{Path(str(member['name'])).name}.pt"
        export_half(member["checkpoint"], models_dir / rel)
        entries.append({"name": member["name"], "arch": member.get("arch"), "checkpoint": rel.as_posix(),
                        "source": str(member["checkpoint"])})
    card = {
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
    path = models_dir / f"{name}.json"
    if predictions is not None:
        card["predictions"] = save_predictions(predictions_path(path), predictions.probs, predictions.labels,
                                               predictions.leaked).name
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path

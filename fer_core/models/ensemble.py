"""Ensembles as networks: several checkpoints whose class probabilities are averaged, read from a saved ensemble.

A saved ensemble is a model card (`models/<name>.json`, arch "ensemble") whose `members` name
float16 copies of the member checkpoints in `models/<name>.members/`, so it is self-contained
(cards/ensembles.py writes it):

    model = loading.load_model("models/my-ensemble.json")   # the one loader of every kind of model
    EmotionRecognizer(model, source="models/my-ensemble.json")

The ensemble module returns log-probabilities, so softmax (what every predictor applies) gives
exactly the averaged member probabilities, and TTA works unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, FERError
from ..paths import UnsafePathError, existing_file, is_regular_file, path_inside, shown
from ..paths import models_dir as default_models_dir
from .card import MAX_CARD_BYTES, ModelCard
from .checkpoints import MAX_CHECKPOINT_BYTES, load_checkpoint, model_from_checkpoint

MAX_MEMBERS = 16  # each member is a whole network in memory and a pass per face


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
        return ModelCard.read(path).is_ensemble
    except FERError:
        return False


def list_ensembles(models_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """(name, card path) of every saved ensemble in models_dir (default: paths.models_dir())."""
    folder = Path(models_dir or default_models_dir())
    return [(p.stem, p) for p in sorted(folder.glob("*.json")) if is_ensemble_file(p)]


def member_paths(card_path: str | os.PathLike) -> list[Path]:
    """The member checkpoints a saved ensemble's card names, each checked before anything reads it: a
    regular file of a checkpoint's size inside the card's folder. A malformed card is one CheckpointError."""
    card_path = existing_file(card_path, "ensemble card", MAX_CARD_BYTES, CheckpointError)
    members = ModelCard.read(card_path, "ensemble card", CheckpointError).members(CheckpointError)
    if len(members) > MAX_MEMBERS:
        raise CheckpointError(f"ensemble card {shown(card_path)} lists {len(members)} members: at most {MAX_MEMBERS}")
    paths = []
    for member in members:
        try:
            path = path_inside(card_path.parent, member["checkpoint"], "ensemble member")
        except UnsafePathError as exc:
            raise CheckpointError(f"{exc} (in {shown(card_path.name)}: members must lie in the card's folder)") from None
        paths.append(existing_file(path, "ensemble member", MAX_CHECKPOINT_BYTES, CheckpointError))
    if len({p.resolve() for p in paths}) < len(paths):
        raise CheckpointError(f"ensemble card {shown(card_path)} lists the same member file twice")
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

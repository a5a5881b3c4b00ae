"""What the Compare page compares: runs and model cards as one kind of entry.

An Entry has whatever is known without running a network: the figures of eval.json or a card, and a
card's stored per-image predictions (card_predictions). Other per-image predictions need the
checkpoint and the dataset (prediction_cache).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import CheckpointError, FERError
from ..models.ensemble import member_paths
from ..paths import UnsafePathError, is_regular_file, models_dir, path_inside, runs_dir
from ..rundir.folder import RunFolder
from .model_cards import ENSEMBLE, EXPERIMENT, REFERENCE, SHIPPED, card_kind, load_cards, member_record
from .predictions import CardPredictions, load_predictions

RUN, UNSAVED_ENSEMBLE = "run", "unsaved ensemble"  # the entry kinds beside the card kinds


class NoPredictions(FERError):
    """An entry with neither stored per-image predictions nor a checkpoint to make them."""


@dataclass
class Entry:
    key: str                      # unique: "run:<id>" or "card:<name>"
    name: str
    kind: str                     # RUN, a card kind (model_cards.KINDS) or UNSAVED_ENSEMBLE
    arch: str
    parameters: int | None = None
    balance: str | None = None
    epochs: int | None = None
    state: str | None = None      # runs only
    sweep: str | None = None
    training_seconds: float | None = None
    device: str | None = None
    images_per_s: float | None = None
    reports: dict = field(default_factory=dict)   # {"val"/"test": {"plain"/"tta": report}}
    tta_views: int | None = None
    learning_curve: list = field(default_factory=list)
    checkpoint: Path | None = None  # a .pt, or a saved ensemble's .json
    data: str | None = None         # the dataset the run was trained on, when known
    note: str = ""                  # why something is missing, shown to the user
    stored: CardPredictions | None = None  # a card's per-image predictions (no checkpoint or dataset needed)
    real_photos: dict = field(default_factory=dict)  # a card's evaluate --photos figures (model_cards.real_photo_rows)

    def report(self, split: str, tta: bool) -> dict | None:
        return self.reports.get(split, {}).get("tta" if tta else "plain")

    def accuracy(self, split: str, tta: bool) -> float | None:
        report = self.report(split, tta)
        return None if report is None else report["accuracy"]


@lru_cache(maxsize=256)
def _checkpoint_problem_cached(path: str, size: int, mtime_ns: int) -> str:
    from ..models.checkpoints import load_checkpoint
    try:
        load_checkpoint(path)
    except CheckpointError as exc:
        return str(exc)
    return ""


def checkpoint_problem(path: Path) -> str:
    """'' for a readable checkpoint, else why not (missing, damaged, foreign); memoised per file version."""
    try:
        stat = path.stat()
    except OSError:
        return f"checkpoint not found: {path}"
    return _checkpoint_problem_cached(str(path), stat.st_size, stat.st_mtime_ns)


def _mean_speed(curve: list[dict]) -> float | None:
    speeds = [m["images_per_s"] for m in curve if m.get("images_per_s")]
    return float(np.mean(speeds)) if speeds else None


def run_entries(folder: str | os.PathLike | None = None) -> list[Entry]:
    """One entry per run in the registry (which also adopts run folders made by the CLI)."""
    from ..runs.registry import Registry
    folder = Path(folder) if folder else runs_dir()
    if not folder.is_dir():
        return []
    entries = []
    for run in Registry(folder).list():
        if not run.run_dir:  # a damaged registry row: the Train page shows it, with Delete
            continue
        run_folder = RunFolder(run.run_dir)
        try:
            config = json.loads(run.config)
        except ValueError:
            config = {}
        status, _ = run_folder.status()
        evaluation, eval_damage = run_folder.evaluation()
        curve, curve_damage = run_folder.metrics(writing=run.state == "running")
        best = run_folder.best
        notes = [f"damaged: {d}" for d in (eval_damage, curve_damage) if d]
        problem = checkpoint_problem(best) if best.is_file() else f"no checkpoint ({RunFolder.BEST}) yet"
        if problem:
            notes.append(problem)
        if not evaluation and not eval_damage:
            notes.append(f"not evaluated yet ({RunFolder.EVAL} is written when training finishes)")
        entries.append(Entry(
            key=f"run:{run.id}", name=run.id, kind=RUN, arch=run.arch, parameters=status.get("parameters"),
            balance=config.get("balance"), epochs=len(curve), state=run.state, sweep=run.sweep,
            training_seconds=evaluation.get("training_seconds") or (sum(m.get("seconds", 0) for m in curve) or None),
            device=evaluation.get("device") or status.get("device"), images_per_s=_mean_speed(curve),
            reports={s: evaluation[s] for s in ("val", "test") if s in evaluation},
            tta_views=evaluation.get("tta_views"), learning_curve=curve,
            checkpoint=None if problem else best, data=config.get("data"), note="; ".join(notes)))
    return entries


def card_entries(folder: str | os.PathLike | None = None) -> list[Entry]:
    """One entry per model card (reference models and saved ensembles); no checkpoint needed."""
    folder = Path(folder) if folder else models_dir()
    entries = []
    for card in load_cards(folder) if folder.is_dir() else []:
        kind = card_kind(card)
        if kind == ENSEMBLE:
            checkpoint = Path(card["card_path"])
            try:
                member_paths(checkpoint)  # a malformed card, or members missing or outside models/: a note
                note = ""
            except CheckpointError as exc:
                note = str(exc)
        elif kind in (REFERENCE, EXPERIMENT):
            checkpoint, note = None, f"{kind} card: its figures and per-image predictions (checkpoint not shipped)"
        else:
            try:
                checkpoint = path_inside(folder, str(card.get("checkpoint") or f"{card['name']}.pt"), "checkpoint")
                note = (checkpoint_problem(checkpoint) if is_regular_file(checkpoint)
                        else f"checkpoint {checkpoint.name} is not in {folder} (card only)")
            except UnsafePathError as exc:
                checkpoint, note = None, str(exc)
        if card.get("damage"):
            checkpoint, note = None, f"damaged: {card['damage']}"
        stored = _card_predictions(folder, card.get("predictions"))
        curve = card.get("learning_curve") or []
        config = card.get("train_config") or {}
        entries.append(Entry(
            key=f"card:{card['name']}", name=card["name"], kind=kind,
            arch=card.get("arch", "?"), parameters=card.get("parameters"), balance=config.get("balance"),
            epochs=card.get("epochs_trained"), training_seconds=card.get("training_seconds"),
            device=card.get("hardware"), images_per_s=_mean_speed(curve), reports=card.get("metrics") or {},
            tta_views=card.get("tta_views"), learning_curve=curve,
            checkpoint=checkpoint if kind in (SHIPPED, ENSEMBLE) and not note else None, note=note,
            stored=None if card.get("damage") else stored,
            real_photos=card["real_photos"] if isinstance(card.get("real_photos"), dict) else {}))
    return entries


def _card_predictions(folder: Path, name) -> CardPredictions | None:
    """The per-image predictions a card names, when that file lies beside it."""
    try:
        return load_predictions(path_inside(folder, name, "predictions")) if isinstance(name, str) else None
    except UnsafePathError:
        return None


def all_entries(runs: str | os.PathLike | None = None, models: str | os.PathLike | None = None) -> list[Entry]:
    return card_entries(models) + run_entries(runs)


def architectures_without_cards(entries: list[Entry]) -> list[str]:
    """Registered architectures that have no reference model card yet."""
    from ..models.registry import list_models
    carded = {e.arch for e in entries if e.kind in (SHIPPED, REFERENCE)}
    return [a for a in list_models() if a not in carded]


# ----------------------------------------------------------------------------- an entry's per-image predictions

def entry_views(entry: Entry, tta: bool) -> int:
    """The TTA views an entry is predicted with: its own (a card's), else the default; 1 without TTA."""
    from ..evaluation.tta import DEFAULT_VIEWS
    return (entry.tta_views or DEFAULT_VIEWS) if tta else 1


def predictions_at_hand(entry: Entry, dataset, split: str, tta: bool) -> np.ndarray | None:
    """Per-image probabilities in the order of `dataset`'s split without running a network: the card's stored
    ones, else the prediction cache of the entry's checkpoint; None when they must be predicted (`prediction_job`).
    FERError when they cannot be had: stored for another version of the dataset with no checkpoint to predict
    again; NoPredictions when neither stored nor a checkpoint."""
    from ..evaluation.prediction_cache import cached_predictions
    if entry.stored is not None:
        if entry.stored.matches(split, dataset[split].labels):
            return entry.stored.get(split, tta)
        if entry.checkpoint is None:
            raise FERError("its stored predictions were made on another version of the dataset")
    if entry.checkpoint is None:
        raise NoPredictions(f"No per-image predictions: {entry.note or 'this model has no checkpoint here'}.")
    return cached_predictions(entry.checkpoint, dataset, split, entry_views(entry, tta))


def prediction_job(entry: Entry, dataset, split: str, tta: bool) -> tuple[str, Callable[..., np.ndarray], tuple]:
    """(key, function, arguments) that predict an entry's probabilities on a split into the prediction cache:
    the key names the cache file (the checkpoint's and the dataset's versions), so one job runs per result."""
    from ..evaluation.prediction_cache import prediction_cache_path, predictions
    views = entry_views(entry, tta)
    return (str(prediction_cache_path(entry.checkpoint, dataset, split, views)), predictions,
            (str(entry.checkpoint), dataset, split, views))


# ----------------------------------------------------------------------------- ensembles of entries

def ensemble_members(entries: list[Entry]) -> list[dict]:
    """What save_ensemble records of each entry (ensembles.member_record: name, checkpoint, arch, parameters,
    training time, hardware); an entry without a checkpoint has None there and cannot be saved."""
    return [member_record(e.name, e.checkpoint, arch=e.arch, parameters=e.parameters,
                          training_seconds=e.training_seconds, epochs_trained=e.epochs, hardware=e.device)
            for e in entries]


def unsaved_ensemble(members: list[Entry], metrics: dict, averaged: CardPredictions, views: int) -> Entry:
    """The entry of an ensemble evaluated from `members` (ensembles.ensemble_metrics) but not saved yet."""
    return Entry(key="session:ensemble", name="ensemble of " + " + ".join(m.name for m in members),
                 kind=UNSAVED_ENSEMBLE, arch="ensemble", parameters=sum(m.parameters or 0 for m in members),
                 reports=metrics, tta_views=views, note="not saved: save it below to use it on Predict",
                 stored=averaged)

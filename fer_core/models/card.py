"""The model card: the JSON file beside each model in models/ (`models/<name>.json`), read, checked and written
only here (as the run folder's files are only by rundir/folder.py).

    card = ModelCard.read("models/default.json")
    card.kind, card.arch, card.report("test", tta=True)["accuracy"], card.temperatures()

A card is kept as it was stored (`fields`): fields this version does not know are written back unchanged, and the
typed views below never fail on a hand-edited or older card: a field that is missing or malformed reads as
"not known" (None, {} or []), and cards made before `format` and `kind` existed get their kind from their fields.
Making cards (from runs, ensembles, measurements) is cards/model_cards.py's job, above this layer.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FERError
from ..paths import derived_name, is_plain_name, read_json_object, shown, write_text_atomic

FORMAT = "fer_core.model_card/1"
# shipped: weights in models/, meant for use; reference: a study's card (architectures at equal budget, class
# balancing); experiment: an ablation or a recipe that lost (card only); ensemble: a saved ensemble.
SHIPPED, REFERENCE, EXPERIMENT, ENSEMBLE = KINDS = ("shipped", "reference", "experiment", "ensemble")
ENSEMBLE_ARCH = "ensemble"
MAX_CARD_BYTES = 16 * 2**20
TEMPERATURE_RANGE = (0.05, 20.0)  # outside it a temperature is a damaged card, not a calibration


def card_kind(fields: dict) -> str:
    """A card's kind; cards written before kinds existed are told apart by their fields."""
    if fields.get("kind") in KINDS:
        return fields["kind"]
    if fields.get("arch") == ENSEMBLE_ARCH:
        return ENSEMBLE
    return REFERENCE if "checkpoint" in fields and fields["checkpoint"] is None else SHIPPED


def _nested(value, *keys):
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


@dataclass
class ModelCard:
    fields: dict = field(default_factory=dict)  # the card as stored
    path: Path | None = None

    @classmethod
    def read(cls, path: str | os.PathLike, what: str = "model card", error: type[FERError] = FERError) -> "ModelCard":
        """The card at `path`; `error` in one line when it is missing, too large or not a JSON object."""
        return cls(read_json_object(path, what, MAX_CARD_BYTES, error), Path(path))

    def write(self, path: str | os.PathLike | None = None) -> Path:
        """Indented JSON, written atomically through the gate (to `path`, else where it was read)."""
        target = Path(path or self.path)
        write_text_atomic(target, json.dumps(self.fields, indent=2) + "\n")
        self.path = target
        return target

    def update(self, **fields) -> "ModelCard":
        """Set `fields` and write the card back."""
        self.fields.update(fields)
        self.write()
        return self

    # ------------------------------------------------------------------------- typed views

    @property
    def ours(self) -> bool:
        """Written by fer_core (other JSON files in a models folder are not cards)."""
        return self.fields.get("format") == FORMAT

    @property
    def kind(self) -> str:
        return card_kind(self.fields)

    @property
    def name(self) -> str:
        """Its plain name, else its file's (a crafted name is never shown or used as a path)."""
        name = self.fields.get("name")
        return name if is_plain_name(name) else derived_name(self.path.stem if self.path else "card")

    @property
    def arch(self) -> str | None:
        arch = self.fields.get("arch")
        return arch if isinstance(arch, str) else None

    @property
    def is_ensemble(self) -> bool:
        return self.arch == ENSEMBLE_ARCH

    @property
    def checkpoint(self) -> str | None:
        """The weights' file name beside the card; None for a reference card or an ensemble."""
        checkpoint = self.fields.get("checkpoint")
        return checkpoint if isinstance(checkpoint, str) and checkpoint else None

    @property
    def formerly(self) -> list[str]:
        """The names a renamed model had (their files still load it)."""
        names = self.fields.get("formerly")
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    def members(self, error: type[FERError] = FERError) -> list[dict]:
        """A saved ensemble's members ({"checkpoint": file inside the card's folder, "name", ...}); `error` when the
        list is malformed."""
        members = self.fields.get("members")
        if not isinstance(members, list) or not all(isinstance(m, dict) and isinstance(m.get("checkpoint"), str)
                                                    for m in members):
            raise error(f"ensemble card {shown(self.path)} is malformed: 'members' must be a list of "
                        f"{{\"checkpoint\": \"<file>\"}} entries")
        return members

    @property
    def tta_views(self) -> int | None:
        views = self.fields.get("tta_views")
        return views if isinstance(views, int) and not isinstance(views, bool) else None

    def report(self, split: str, tta: bool) -> dict | None:
        """The metrics of a split ("val" = PublicTest, "test" = PrivateTest), with or without TTA."""
        report = _nested(self.fields, "metrics", split, "tta" if tta else "plain")
        return report if isinstance(report, dict) else None

    def accuracy(self, split: str, tta: bool) -> float | None:
        return self.number("metrics", split, "tta" if tta else "plain", "accuracy")

    def number(self, *keys: str) -> float | None:
        """A figure at a path of nested fields (e.g. "speed", "ms_per_face"), or None."""
        value = _nested(self.fields, *keys)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def section(self, key: str) -> dict:
        """A nested section (real_photos, ferplus, speed, calibration...) as a dict; {} when absent or malformed."""
        value = self.fields.get(key)
        return value if isinstance(value, dict) else {}

    def temperatures(self) -> dict[str, float] | None:
        """The calibration temperatures {"plain", "tta"} fitted on PublicTest; None without usable ones."""
        temperatures = {mode: self.number("calibration", mode, "temperature") for mode in ("plain", "tta")}
        low, high = TEMPERATURE_RANGE
        if any(t is None or not low <= t <= high for t in temperatures.values()):
            return None
        return temperatures

"""Per-image predictions beside a model card: `models/<name>.predictions.npz`.

The file holds float16 class probabilities (N, 7) on PublicTest ("val") and PrivateTest ("test"), plain
and with TTA, in the dataset's split order, with the labels they were scored against and which PrivateTest
images have a copy in Training (leakage). With it a clone
without checkpoints recomputes the card's figures, evaluates ensembles of cards and tests significance;
only thumbnails need the dataset. About 200 KB per card.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import NUM_CLASSES
from ..paths import atomic_write

SPLITS = ("val", "test")
MODES = ("plain", "tta")
SUFFIX = ".predictions.npz"


def predictions_path(card_path: str | os.PathLike) -> Path:
    """models/<name>.json -> models/<name>.predictions.npz"""
    card_path = Path(card_path)
    return card_path.with_name(card_path.stem + SUFFIX)


@dataclass
class CardPredictions:
    probs: dict[tuple[str, str], np.ndarray]   # (split, mode) -> (N, 7) float32
    labels: dict[str, np.ndarray]              # split -> (N,) int64
    leaked: np.ndarray | None = None           # (N_test,) bool: has a copy in Training (None: not known)

    def get(self, split: str, tta: bool) -> np.ndarray:
        return self.probs[(split, "tta" if tta else "plain")]

    def matches(self, split: str, labels: np.ndarray) -> bool:
        """Whether these predictions are in the order of a dataset split with these labels."""
        return np.array_equal(self.labels[split], np.asarray(labels))


def to_float16(probs: np.ndarray) -> np.ndarray:
    """float16 probabilities whose argmax is the original's: a near-tie that rounding would flip gets its
    predicted class nudged up by one float16 step, so every figure computed from the file is the card's."""
    probs = np.asarray(probs, dtype=np.float32)
    half = probs.astype(np.float16)
    predicted = probs.argmax(1)
    for row in np.flatnonzero(half.argmax(1) != predicted):
        half[row, predicted[row]] = np.nextafter(half[row].max(), np.float16(np.inf))
    return half


def save_predictions(path: str | os.PathLike, probs: dict[tuple[str, str], np.ndarray],
                     labels: dict[str, np.ndarray], leaked: np.ndarray | None = None) -> Path:
    path = Path(path)
    arrays = {f"{split}_{mode}": to_float16(probs[(split, mode)]) for split in SPLITS for mode in MODES}
    arrays.update({f"{split}_labels": np.asarray(labels[split], dtype=np.int8) for split in SPLITS})
    if leaked is not None:
        arrays["test_leaked"] = np.asarray(leaked, dtype=bool)
    with atomic_write(path) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no suffix
        np.savez_compressed(fh, **arrays)
    return path


def load_predictions(path: str | os.PathLike) -> CardPredictions | None:
    """The predictions in `path`, or None when the file is missing or not a complete predictions file."""
    try:
        with np.load(path) as z:
            labels = {split: z[f"{split}_labels"].astype(np.int64) for split in SPLITS}
            probs = {(split, mode): z[f"{split}_{mode}"].astype(np.float32) for split in SPLITS for mode in MODES}
            leaked = z["test_leaked"].astype(bool) if "test_leaked" in z.files else None
    except Exception:  # missing, truncated or foreign: the card just has no per-image predictions
        return None
    for (split, _), p in probs.items():
        if p.shape != (len(labels[split]), NUM_CLASSES):
            return None
    if leaked is not None and leaked.shape != labels["test"].shape:
        leaked = None
    return CardPredictions(probs, labels, leaked)


def calibration_of(probs: dict[tuple[str, str], np.ndarray], labels: dict[str, np.ndarray]) -> dict:
    """A card's `calibration`: per mode (plain, tta), the temperature fitted on PublicTest and the ECE before and
    after on PublicTest and PrivateTest (evaluation/calibration.py)."""
    from ..evaluation.calibration import calibrate
    return {mode: calibrate(probs[("val", mode)], labels["val"], probs[("test", mode)], labels["test"])
            for mode in MODES}

"""The dataset in memory: `FER2013`, three splits of 48x48 uint8 images with FER2013-order labels and an
id per image (its path inside the source, or its CSV line). Protocol: train = Training, val = PublicTest,
test = PrivateTest."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..labels import EMOTIONS, NUM_CLASSES
from ..paths import shown

IMAGE_SIZE = 48
SPLITS = ("train", "val", "test")


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, FER2013 order
    ids: np.ndarray     # (N,) str: path inside the source, or "line N" of a CSV
    targets: np.ndarray | None = None  # (N, 7) float32 soft targets (FER+'s vote shares), when the labels have them

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)

    def subset(self, mask_or_index) -> "Split":
        targets = None if self.targets is None else self.targets[mask_or_index]
        return Split(self.images[mask_or_index], self.labels[mask_or_index], self.ids[mask_or_index], targets)


@dataclass
class FER2013:
    source: str
    format: str                      # "zip", "folder" or "csv"
    splits: dict[str, Split]
    val_from_train: bool = False     # val was carved out of train (no PublicTest in the source)
    problems: list[str] = field(default_factory=list)  # one line per skipped or resized item

    def __getitem__(self, split: str) -> Split:
        if split not in self.splits:
            raise DataError(f"unknown split '{split}': choose one of {', '.join(SPLITS)}")
        return self.splits[split]

    def __len__(self) -> int:
        return sum(len(s) for s in self.splits.values())

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: dict(zip(EMOTIONS, map(int, s.class_counts()))) for name, s in self.splits.items()}

    def without(self, ids) -> "FER2013":
        """A copy without the images whose id is in `ids` (e.g. flagged by the health audit)."""
        drop = set(ids)
        splits = {n: s.subset(~np.isin(s.ids, list(drop))) if drop else s for n, s in self.splits.items()}
        return FER2013(self.source, self.format, splits, self.val_from_train, list(self.problems))


def check_trainable(ds: FER2013) -> None:
    """DataError unless the training split holds at least two classes (one class trains nothing, at 100%)."""
    present = [EMOTIONS[c] for c in np.flatnonzero(ds["train"].class_counts())]
    if len(present) < 2:
        raise DataError(f"{shown(ds.source, 200)} has {'only ' + present[0] if present else 'no'} training images"
                        f"{'' if present else ' at all'}: a classifier needs at least two classes to learn from")


def dataset_report(ds: FER2013) -> dict:
    """Per-split, per-class counts, shares and the imbalance ratio (largest class / smallest)."""
    splits = {}
    for name, split in ds.splits.items():
        counts = split.class_counts()
        nonzero = counts[counts > 0]
        splits[name] = {
            "total": int(counts.sum()),
            "counts": dict(zip(EMOTIONS, map(int, counts))),
            "percent": dict(zip(EMOTIONS, (100 * counts / max(counts.sum(), 1)).round(2).tolist())),
            "imbalance_ratio": round(float(nonzero.max() / nonzero.min()), 2) if len(nonzero) else None,
        }
    return {"source": ds.source, "format": ds.format, "total": len(ds), "val_from_train": ds.val_from_train,
            "splits": splits, "problems": ds.problems}

"""FER+ (Barsoum et al., ICMI 2016): ten crowd votes for every FER2013 image, as labels for our dataset.

The votes file (`fer2013new.csv`, Microsoft's FERPlus repository, MIT licence) is the user's to give: its rows
follow `fer2013.csv`, row for row. A fer2013.csv source therefore joins by row; the Kaggle zip (or its folder)
keeps no row order, so it joins through the index shipped beside this module (`ferplus_kaggle_index.csv.gz`:
FER+ row -> file inside the Kaggle zip, matched by content; the 175 images without a usable row are left out).

What the crowd's votes become, following FERPlus's own `ferplus.py` but for one change:
- contempt, which FER2013's seven classes lack, is folded into disgust (both are expressions of rejection,
  and disgust is FER2013's rarest class) before the majority is taken, so disgust and contempt votes together
  can make a majority neither had alone (FERPlus's 8 classes keep them apart);
- a single vote for an emotion is dropped as noise (FERPlus's outlier removal);
- the majority is the emotion with more than half of the remaining votes; images whose majority is no
  emotion ("unknown", "not a face") or that have no majority are left out;
- the soft target is the distribution of the remaining emotion votes.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError
from ..labels import EMOTIONS
from ..paths import data_dir, read_text_file, shown
from .dataset import FER2013, Split

LABEL_SOURCES = ("fer2013", "ferplus", "ferplus-soft")
VOTES_ENV = "FER_PLUS"
VOTES_NAME = "fer2013new.csv"
INDEX_FILE = Path(__file__).with_name("ferplus_kaggle_index.csv.gz")
HOW_TO_GET = ("FER+'s votes are Microsoft's fer2013new.csv (https://github.com/microsoft/FERPlus, MIT licence): "
              f"give it with --ferplus PATH, set ${VOTES_ENV}, or put it in data/{VOTES_NAME}")

# fer2013new.csv's vote columns, in its order, and where each goes in FER2013's order (None: not an emotion)
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
_TO_FER2013 = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise", "sadness": "sad",
               "anger": "angry", "disgust": "disgust", "fear": "fear", "contempt": "disgust"}
ROWS = 35_887


@dataclass
class CrowdLabels:
    """Per FER+ row: the majority emotion (FER2013 index, -1 where the crowd gives none) and the vote share of each
    of the seven emotions (zeros where no emotion vote is left)."""
    majority: np.ndarray  # (ROWS,) int64
    soft: np.ndarray      # (ROWS, 7) float32, rows sum to 1 or 0


def find_votes_file(path: str | os.PathLike | None = None) -> Path:
    """The votes file: `path`, else $FER_PLUS, else data/fer2013new.csv; DataError saying how to get it."""
    given = path if path not in (None, "") else os.environ.get(VOTES_ENV) or None
    candidate = Path(given).expanduser() if given else data_dir() / VOTES_NAME
    if not candidate.is_file():
        where = f"{shown(candidate, 200)} does not exist" if given else "no FER+ votes file found"
        raise DataError(f"{where}. {HOW_TO_GET}")
    return candidate


@dataclass
class Votes:
    counts: np.ndarray  # (ROWS, 10) in VOTE_COLUMNS order
    usage: np.ndarray   # (ROWS,) "Training", "PublicTest" or "PrivateTest": the split fer2013.csv gives each row


def read_votes(path: str | os.PathLike) -> Votes:
    """fer2013new.csv's vote counts and usage; DataError for anything else."""
    text = read_text_file(path, "FER+ votes file", error=DataError)
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if header[2:] != list(VOTE_COLUMNS):
        raise DataError(f"{shown(path, 200)} is not FER+'s fer2013new.csv: its header is not "
                        f"'Usage,Image name,{','.join(VOTE_COLUMNS)}'")
    votes, usage = [], []
    for line_no, row in enumerate(reader, start=2):
        try:
            votes.append([int(v or 0) for v in row[2:12]] + [0] * (12 - max(len(row), 2)))
        except ValueError:
            raise DataError(f"{shown(path, 200)} line {line_no}: vote counts are not integers") from None
        usage.append(row[0].strip() if row else "")
    if len(votes) != ROWS:
        raise DataError(f"{shown(path, 200)} has {len(votes)} rows: FER+ has one per FER2013 image ({ROWS})")
    return Votes(np.asarray(votes, dtype=np.int64)[:, :len(VOTE_COLUMNS)], np.asarray(usage))


def crowd_labels(votes: np.ndarray) -> CrowdLabels:
    """The majority and the soft targets of every row (see the module's docstring for the rules)."""
    votes = np.where(votes <= 1, 0, votes)  # FERPlus's outlier removal: a lone vote is noise
    emotions = np.zeros((len(votes), len(EMOTIONS)), dtype=np.float32)
    for column, name in enumerate(VOTE_COLUMNS):
        if name in _TO_FER2013:
            emotions[:, EMOTIONS.index(_TO_FER2013[name])] += votes[:, column]
    total = votes.sum(1)  # unknown and not-a-face votes count against a majority
    best = emotions.argmax(1)
    majority = np.where(emotions.max(1) > total / 2, best, -1)
    emotion_votes = emotions.sum(1, keepdims=True)
    soft = np.divide(emotions, emotion_votes, out=np.zeros_like(emotions), where=emotion_votes > 0)
    return CrowdLabels(majority.astype(np.int64), soft)


def read_index() -> dict[str, int]:
    """The shipped index: a Kaggle zip member's path (split/emotion/file) -> its FER+ row."""
    with gzip.open(INDEX_FILE, "rt", newline="") as fh:
        return {row["kaggle_path"]: int(row["row"]) for row in csv.DictReader(fh)}


def _rows_of(ids: np.ndarray, fmt: str, index: dict[str, int]) -> np.ndarray:
    """The FER+ row of each image id (-1 where there is none): a CSV's 'line N' is row N - 2, an image's path
    is matched on its last three parts (split/emotion/file), so an extracted folder's prefix does not matter."""
    if fmt == "csv":
        return np.array([int(i.rsplit(" ", 1)[-1]) - 2 for i in ids], dtype=np.int64)
    return np.array([index.get("/".join(PurePosixPath(i).parts[-3:]), -1) for i in ids], dtype=np.int64)


USAGE_OF_SPLIT = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def joined_rows(dataset: FER2013, votes: Votes) -> dict[str, np.ndarray]:
    """Per split, each image's FER+ row (-1 where it has none). DataError when nothing joins, or when a CSV's rows
    are not in fer2013.csv's order (a row's split differs from the one FER+ gives that row)."""
    index = {} if dataset.format == "csv" else read_index()
    rows_of, matched = {}, 0
    for name, split in dataset.splits.items():
        rows = _rows_of(split.ids, dataset.format, index)
        rows[(rows < 0) | (rows >= ROWS)] = -1
        joined = rows >= 0
        if dataset.format == "csv" and not dataset.val_from_train and joined.any():
            moved = votes.usage[rows[joined]] != USAGE_OF_SPLIT[name]
            if moved.any():
                raise DataError(f"{shown(dataset.source, 200)} is not in fer2013.csv's row order ({int(moved.sum())} "
                                f"{name} rows are another split in FER+): FER+ joins a CSV by row, so it must be the "
                                f"original file, unfiltered and unsorted")
        matched += int(joined.sum())
        rows_of[name] = rows
    if not matched:
        raise DataError(f"none of the images of {shown(dataset.source, 200)} has a FER+ row: FER+ labels join "
                        "the Kaggle zip (or its folder) through the shipped index, and fer2013.csv by row")
    return rows_of


def with_crowd_labels(dataset: FER2013, votes_file: str | os.PathLike | None = None) -> FER2013:
    """`dataset` relabelled by the crowd: each split keeps the images with a FER+ majority, labelled with it,
    and carries the vote shares as `targets`. DataError when the votes file or the join is unusable."""
    votes = read_votes(find_votes_file(votes_file))
    crowd = crowd_labels(votes.counts)
    splits = {}
    for name, rows in joined_rows(dataset, votes).items():
        keep = rows >= 0
        keep[keep] = crowd.majority[rows[keep]] >= 0
        kept = dataset.splits[name].subset(keep)
        splits[name] = Split(kept.images, crowd.majority[rows[keep]], kept.ids, crowd.soft[rows[keep]])
    return FER2013(dataset.source, dataset.format, splits, dataset.val_from_train, list(dataset.problems))


@dataclass
class CrowdComparison:
    """Every image of a dataset that has a FER+ row: its id, split, FER2013 label, the crowd's majority (-1: none)
    and its raw votes (VOTE_COLUMNS order)."""
    ids: np.ndarray
    splits: np.ndarray
    labels: np.ndarray
    majority: np.ndarray
    votes: np.ndarray

    def agreement(self) -> float:
        """The share of images with a crowd majority whose majority is FER2013's label."""
        has = self.majority >= 0
        return float((self.majority[has] == self.labels[has]).mean()) if has.any() else 0.0


def compare_with_crowd(dataset: FER2013, votes_file: str | os.PathLike | None = None) -> CrowdComparison:
    """FER2013's label beside the crowd's, image by image (the Dataset page's disagreement view)."""
    votes = read_votes(find_votes_file(votes_file))
    crowd = crowd_labels(votes.counts)
    parts = []
    for name, rows in joined_rows(dataset, votes).items():
        split, ok = dataset.splits[name], rows >= 0
        parts.append((split.ids[ok], np.full(ok.sum(), name), split.labels[ok], crowd.majority[rows[ok]],
                      votes.counts[rows[ok]]))
    ids, splits, labels, majority, votes = (np.concatenate(column) for column in zip(*parts))
    return CrowdComparison(ids, splits, labels, majority, votes)


def votes_text(votes: np.ndarray) -> str:
    """'neutral 6, sadness 3, anger 1': a row's votes, most first."""
    order = np.argsort(-votes, kind="stable")
    return ", ".join(f"{VOTE_COLUMNS[k]} {votes[k]}" for k in order if votes[k] > 0)

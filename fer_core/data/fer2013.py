"""FER2013 readers: the Kaggle zip, its extracted folder and the original fer2013.csv.

Every reader ends in the same place: a `FER2013` with three splits of 48x48 uint8 images,
FER2013-order labels and an id per image (its path inside the source, or its CSV line).
Protocol: train = Training, val = PublicTest, test = PrivateTest. Decoding all 35,887 images
takes seconds, so the result is cached on disk, keyed by the source and its fingerprint.
"""
from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from ..errors import DataError
from ..labels import EMOTIONS, NUM_CLASSES, label_index
from ..paths import StorageError, atomic_write, data_dir, default_cache_dir, os_reason, shown
from .archive import open_archive, open_text_member, read_member

log = logging.getLogger(__name__)

IMAGE_SIZE = 48
SPLITS = ("train", "val", "test")
SPLIT_OF_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SPLIT_DIRS = {"train": "train", "training": "train", "val": "val", "valid": "val",
              "validation": "val", "test": "test", "testing": "test"}
# The image files this product reads, dataset members and user photos alike (inference.images reads the same).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
VAL_FRACTION = 0.1  # of train, for sources without a PublicTest split
CACHE_VERSION = 1
_USAGE_PREFIX = re.compile(r"^(Training|PublicTest|PrivateTest)_", re.IGNORECASE)

HOW_TO_GET = ("Download FER2013 from Kaggle (https://www.kaggle.com/datasets/msambare/fer2013, "
              "'archive.zip') and pass it with --data PATH, set FER_DATA, or put it in data/.")


@dataclass
class Split:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, FER2013 order
    ids: np.ndarray     # (N,) str: path inside the source, or "line N" of a CSV

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=NUM_CLASSES)

    def subset(self, mask_or_index) -> "Split":
        return Split(self.images[mask_or_index], self.labels[mask_or_index], self.ids[mask_or_index])


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


# ----------------------------------------------------------------------------- where the data is

def resolve_data_path(path: str | os.PathLike | None = None) -> Path:
    """The dataset to use: `path`, else $FER_DATA, else the project's data/ folder."""
    if path is None or str(path) == "":
        path = os.environ.get("FER_DATA") or data_dir()
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise DataError(f"dataset not found: {shown(path, 200)} does not exist. {HOW_TO_GET}") from None
        raise DataError(f"dataset {shown(path, 200)}: {os_reason(exc)}") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # a device, a pipe, a socket
        raise DataError(f"{shown(path, 200)} is neither a file nor a folder: give the Kaggle zip, its extracted "
                        f"folder or fer2013.csv")
    if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
        raise DataError(f"dataset {shown(path, 200)}: permission denied (this user cannot read it)")
    return _find_source(path)


def check_dataset(path: str | os.PathLike | None = None) -> Path:
    """The dataset source, after a cheap look (names and header, no decoding) that it is FER2013.

    What a job launcher runs before queueing: a wrong file is refused at once, not inside the job."""
    source = resolve_data_path(path)
    if source.is_dir():
        return source  # _find_source has seen split or emotion folders
    suffix = source.suffix.lower()
    if suffix == ".csv":
        with open(source, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().lstrip("\ufeff").lower()
        if "emotion" not in header or "pixels" not in header:
            raise DataError(f"{source} is not a FER2013 CSV: its first line is not 'emotion,pixels,Usage'")
        return source
    if suffix != ".zip":
        raise DataError(f"{source} is not a FER2013 dataset: expected the Kaggle .zip, its extracted folder "
                        f"or fer2013.csv")
    with open_archive(source) as zf:
        names = zf.namelist()
        csvs = [n for n in names if n.lower().endswith(".csv") and not _hidden(PurePosixPath(n))]
        header = ""
        if csvs:
            with open_text_member(zf, csvs[0]) as fh:
                header = fh.readline().lower()
    images = [PurePosixPath(n).parts for n in names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]
    has_csv = "emotion" in header and "pixels" in header
    if not has_csv and not any(len(parts) >= 2 and label_index(parts[-2]) is not None for parts in images):
        raise DataError(f"{source} holds no FER2013 images (<split>/<emotion>/*.jpg) and no fer2013.csv. "
                        f"{HOW_TO_GET}")
    return source


def _find_source(path: Path) -> Path:
    """A folder may hold the dataset itself or a zip/CSV of it (as data/ usually does)."""
    if path.is_file():
        return path
    children = [p for p in path.iterdir() if not p.name.startswith(".")]
    names = {p.name.lower() for p in children if p.is_dir()}
    if names & set(SPLIT_DIRS) or any(label_index(n) is not None for n in names):
        return path
    for name in ("fer2013.csv", "archive.zip", "fer2013.zip"):
        if (path / name).is_file():
            return path / name
    zips = sorted(p for p in children if p.suffix.lower() == ".zip")
    csvs = sorted(p for p in children if p.suffix.lower() == ".csv")
    if len(zips) + len(csvs) == 1:
        return (zips + csvs)[0]
    subdirs = [p for p in children if p.is_dir()]
    if len(subdirs) == 1:  # e.g. an archive extracted into its own folder
        return _find_source(subdirs[0])
    if not children:
        raise DataError(f"dataset folder is empty: {path}. {HOW_TO_GET}")
    raise DataError(f"no FER2013 dataset found in {path}: expected train/ and test/ folders, "
                    f"a Kaggle archive .zip or fer2013.csv. {HOW_TO_GET}")


# ----------------------------------------------------------------------------- public entry point

def load_dataset(path: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True, strict: bool = False) -> FER2013:
    """Load FER2013 from a zip, folder or CSV, through the on-disk cache.

    Undecodable images and bad CSV rows are skipped, and images that are not 48x48 are resized;
    each such case is one line in `problems` (and a log warning). With `strict=True` the first one
    raises DataError instead.
    """
    source = resolve_data_path(path)
    cache_file = _cache_file(source, cache_dir) if use_cache else None
    if cache_file is not None and cache_file.exists():
        try:
            return _read_cache(cache_file, source)
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            log.warning("ignoring unreadable dataset cache %s (%s)", cache_file, exc)
    reader = _read_csv if source.suffix.lower() == ".csv" else _read_image_tree
    dataset = reader(source, strict)
    if cache_file is not None:
        _write_cache(cache_file, dataset)
    return dataset


# ----------------------------------------------------------------------------- image trees (zip, folder)

class _Problems(list):
    def __init__(self, strict: bool):
        super().__init__()
        self.strict = strict

    def add(self, line: str) -> None:
        if self.strict:
            raise DataError(line)
        log.warning(line)
        self.append(line)


def _read_image_tree(source: Path, strict: bool) -> FER2013:
    problems = _Problems(strict)
    if source.is_dir():
        files = [p for p in source.rglob("*") if p.is_file() and not _hidden(p.relative_to(source))]
        entries = [(p.relative_to(source).as_posix(), p) for p in files]
        read = Path.read_bytes
        fmt = "folder"
    else:
        zf = open_archive(source)
        csvs = [n for n in zf.namelist() if n.lower().endswith(".csv") and not _hidden(PurePosixPath(n))]
        images = [n for n in zf.namelist() if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]
        if csvs and not images:
            with zf, open_text_member(zf, csvs[0]) as fh:
                return _parse_csv(fh, source, f"{source}!{csvs[0]}", strict)
        entries = [(n, n) for n in zf.namelist() if not n.endswith("/") and not _hidden(PurePosixPath(n))]
        read = partial(read_member, zf)
        fmt = "zip"

    records = []  # (id, handle, label, split or None)
    for rel, handle in sorted(entries):
        parts = PurePosixPath(rel).parts
        if PurePosixPath(rel).suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if len(parts) < 2:
            problems.add(f"{rel}: image outside any emotion folder — skipped")
            continue
        label = label_index(parts[-2])
        if label is None:
            raise DataError(f"unknown class folder '{parts[-2]}' ({'/'.join(parts[:-1])}) in {source}: "
                            f"expected one of {', '.join(EMOTIONS)}")
        records.append((rel, handle, label, _split_of(parts)))
    if not records:
        raise DataError(f"no images found in {source}: expected <split>/<emotion>/*.jpg "
                        f"(e.g. train/happy/Training_1.jpg). {HOW_TO_GET}")

    raw = [read(handle) for _, handle, _, _ in records]  # sequential: a ZipFile is not thread-safe
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # cv2 releases the GIL
        decoded = list(pool.map(_decode, raw, chunksize=256))

    ok, images = [], []
    for record, (img, note) in zip(records, decoded):
        if img is None:
            problems.add(f"{record[0]}: {note} — skipped")
            continue
        if note:
            problems.add(f"{record[0]}: {note} — resized to 48x48")
        ok.append(record)
        images.append(img)
    if not ok:
        raise DataError(f"none of the {len(records)} images in {source} could be decoded")
    ids = np.array([r[0] for r in ok])
    labels = np.array([r[2] for r in ok], dtype=np.int64)
    split_of = np.array([r[3] or "" for r in ok])
    return _assemble(str(source), fmt, np.stack(images), labels, ids, split_of, list(problems))


def _hidden(rel: PurePosixPath) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in rel.parts)


def _split_of(parts: tuple[str, ...]) -> str | None:
    """The split an image belongs to: its filename prefix first, then its split folder."""
    match = _USAGE_PREFIX.match(parts[-1])
    if match:
        usage = {k.lower(): v for k, v in SPLIT_OF_USAGE.items()}
        return usage[match.group(1).lower()]
    for part in reversed(parts[:-2]):
        if part.lower() in SPLIT_DIRS:
            return SPLIT_DIRS[part.lower()]
    return None


def _decode(data: bytes) -> tuple[np.ndarray | None, str]:
    """A 48x48 grayscale image and a note (empty when nothing was wrong)."""
    if not data:
        return None, "empty file"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None:
        return None, "not a decodable image"
    if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
        h, w = img.shape
        return cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA), f"{w}x{h} image"
    return img, ""


# ----------------------------------------------------------------------------- fer2013.csv

def _read_csv(source: Path, strict: bool) -> FER2013:
    try:
        with open(source, encoding="utf-8", newline="") as fh:
            return _parse_csv(fh, source, str(source), strict)
    except UnicodeDecodeError:
        raise DataError(f"{shown(source, 200)} is not UTF-8 text: is it really fer2013.csv?") from None


def _parse_csv(fh, source: Path, name: str, strict: bool) -> FER2013:
    problems = _Problems(strict)
    header = fh.readline().strip().lstrip("\ufeff")
    columns = [c.strip().lower() for c in header.split(",")]
    if "emotion" not in columns or "pixels" not in columns:
        raise DataError(f"{name} is not a FER2013 CSV: expected the header 'emotion,pixels,Usage', "
                        f"found '{header[:80]}'")
    col_emotion, col_pixels = columns.index("emotion"), columns.index("pixels")
    col_usage = columns.index("usage") if "usage" in columns else None
    images, labels, ids, splits = [], [], [], []
    expected = IMAGE_SIZE * IMAGE_SIZE
    for line_no, line in enumerate(fh, start=2):
        line = line.strip()
        if not line:
            continue
        fields = line.split(",")
        if len(fields) < len(columns):
            problems.add(f"{name} line {line_no}: {len(fields)} fields, expected {len(columns)} — skipped")
            continue
        try:
            label = int(fields[col_emotion])
        except ValueError:
            label = -1
        if not 0 <= label < NUM_CLASSES:
            problems.add(f"{name} line {line_no}: emotion '{fields[col_emotion]}' is not 0..6 — skipped")
            continue
        values = fields[col_pixels].split()
        if len(values) != expected:
            problems.add(f"{name} line {line_no}: {len(values)} pixel values, expected {expected} — skipped")
            continue
        try:
            pixels = np.array(values, dtype=np.int64)
        except ValueError:
            problems.add(f"{name} line {line_no}: pixels are not all integers — skipped")
            continue
        if pixels.min() < 0 or pixels.max() > 255:
            problems.add(f"{name} line {line_no}: pixel values outside 0..255 — skipped")
            continue
        usage = fields[col_usage].strip() if col_usage is not None else ""
        images.append(pixels.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
        labels.append(label)
        ids.append(f"line {line_no}")
        splits.append(SPLIT_OF_USAGE.get(usage, ""))
    if not images:
        raise DataError(f"{name} has no usable rows")
    return _assemble(str(source), "csv", np.stack(images), np.array(labels, dtype=np.int64),
                     np.array(ids), np.array(splits), list(problems))


# ----------------------------------------------------------------------------- splits

def _assemble(source, fmt, images, labels, ids, split_of, problems) -> FER2013:
    """Three splits from per-image split names; '' means 'train unless a split is missing'."""
    split_of = np.where(split_of == "", "train", split_of)
    val_from_train = False
    if not (split_of == "val").any():
        split_of = _carve(split_of, labels, "val", seed=0)
        val_from_train = True
    if not (split_of == "test").any():
        split_of = _carve(split_of, labels, "test", seed=1)
    splits = {name: Split(images[split_of == name], labels[split_of == name], ids[split_of == name])
              for name in SPLITS}
    return FER2013(source, fmt, splits, val_from_train, problems)


def _carve(split_of: np.ndarray, labels: np.ndarray, target: str, seed: int) -> np.ndarray:
    """Move a deterministic, stratified VAL_FRACTION of train into `target`."""
    split_of = split_of.copy()
    rng = np.random.default_rng(seed)
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero((split_of == "train") & (labels == c))
        take = int(round(len(idx) * VAL_FRACTION))
        if len(idx) >= 2 and take == 0:
            take = 1
        split_of[rng.permutation(idx)[:take]] = target
    return split_of


# ----------------------------------------------------------------------------- cache

def _fingerprint(source: Path) -> str:
    h = hashlib.sha256()
    if source.is_file():
        st = source.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        for p in sorted(source.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(source).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _cache_file(source: Path, cache_dir) -> Path:
    source_key = hashlib.sha256(f"v{CACHE_VERSION}:{source.resolve()}".encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / f"{source_key}-{_fingerprint(source)}.npz"


def _write_cache(cache_file: Path, ds: FER2013) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        for stale in cache_file.parent.glob(cache_file.name.split("-")[0] + "-*.npz"):
            stale.unlink(missing_ok=True)  # the source changed: its old cache is useless
        arrays = {f"{n}_{k}": getattr(s, k) for n, s in ds.splits.items() for k in ("images", "labels", "ids")}
        meta = {"format": ds.format, "val_from_train": ds.val_from_train, "problems": ds.problems}
        with atomic_write(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    except (OSError, StorageError) as exc:
        log.warning("could not write the dataset cache %s (%s); the next load decodes again", cache_file, exc)


def _read_cache(cache_file: Path, source: Path) -> FER2013:
    with np.load(cache_file, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        splits = {n: Split(z[f"{n}_images"], z[f"{n}_labels"], z[f"{n}_ids"]) for n in SPLITS}
    return FER2013(str(source), meta["format"], splits, meta["val_from_train"], meta["problems"])


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

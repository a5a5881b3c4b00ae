"""Decoding FER2013 from its three forms into a `FER2013`: an image tree (<split>/<emotion>/*.jpg, zipped or
not) and fer2013.csv. Sources without a PublicTest (or PrivateTest) split get one carved out of train,
stratified and deterministic. Undecodable images and bad rows are skipped, images that are not 48x48 are
resized; each such case is one line in `problems` (or, `strict`, a DataError)."""
from __future__ import annotations

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path, PurePosixPath

import cv2
import numpy as np

from ..errors import DataError
from ..labels import EMOTIONS, NUM_CLASSES, label_index
from ..paths import shown
from .archive import open_archive, open_text_member, read_member
from .dataset import FER2013, IMAGE_SIZE, SPLITS, Split
from .sources import HOW_TO_GET, IMAGE_SUFFIXES, SPLIT_DIRS, hidden

log = logging.getLogger(__name__)

SPLIT_OF_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
VAL_FRACTION = 0.1  # of train, for sources without a PublicTest split
_USAGE_PREFIX = re.compile(r"^(Training|PublicTest|PrivateTest)_", re.IGNORECASE)



class _Problems(list):
    """Every skipped or resized item, one line each; the first few are logged, then one line says how many more."""
    LOGGED = 5

    def __init__(self, strict: bool):
        super().__init__()
        self.strict = strict

    def add(self, line: str) -> None:
        if self.strict:
            raise DataError(line)
        if len(self) < self.LOGGED:
            log.warning(line)
        elif len(self) == self.LOGGED:
            log.warning("... more images skipped or resized: `data report` lists them all")
        self.append(line)


def read_image_tree(source: Path, strict: bool) -> FER2013:
    problems = _Problems(strict)
    if source.is_dir():
        files = [p for p in source.rglob("*") if p.is_file() and not hidden(p.relative_to(source))]
        entries = [(p.relative_to(source).as_posix(), p) for p in files]
        read = Path.read_bytes
        fmt = "folder"
    else:
        zf = open_archive(source)
        csvs = [n for n in zf.namelist() if n.lower().endswith(".csv") and not hidden(PurePosixPath(n))]
        images = [n for n in zf.namelist() if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]
        if csvs and not images:
            with zf, open_text_member(zf, csvs[0]) as fh:
                return _parse_csv(fh, source, f"{source}!{csvs[0]}", strict)
        entries = [(n, n) for n in zf.namelist() if not n.endswith("/") and not hidden(PurePosixPath(n))]
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

    decoded = _decode_all(records, read)

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


CHUNK_BYTES = 32 * 2**20  # read this much, decode it, let it go: a large archive never sits in memory whole


def _decode_all(records: list, read) -> list[tuple[np.ndarray | None, str]]:
    """Each record's decoded image, reading the files in chunks of about CHUNK_BYTES (sequentially: a ZipFile is
    not thread-safe) and decoding each chunk on every core (cv2 releases the GIL)."""
    decoded: list = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        chunk, size = [], 0
        for _, handle, _, _ in records:
            chunk.append(read(handle))
            size += len(chunk[-1])
            if size >= CHUNK_BYTES:
                decoded += pool.map(_decode, chunk, chunksize=64)
                chunk, size = [], 0
        decoded += pool.map(_decode, chunk, chunksize=64)
    return decoded


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



def read_csv(source: Path, strict: bool) -> FER2013:
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

"""Scoring the whole pipeline on labelled photos (`python -m fer_core evaluate --photos DIR|CSV`): each photo goes in
whole, as a user's would, and the recognizer finds, frames and labels its largest face. A photo without a face
found counts as wrong. With `stress`, every photo is first given one of stress.py's hard cases.

A photo set is a folder of <emotion>/*.jpg (sub-subfolders included) or a CSV of `path,label` rows (paths
relative to the CSV's folder, or absolute).
"""
from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score

from ..errors import FERError, ImageError
from ..labels import EMOTIONS
from ..paths import read_text_file, shown
from .face_folder import emotion_of_folder
from .faces import FaceDetector
from .images import IMAGE_EXTENSIONS, read_image
from .stress import STRESSES, stress_of, stressed

NO_FACE = "no face"


@dataclass
class PhotoSet:
    name: str                 # the folder's or CSV's name, as cards and Compare show it
    paths: list[Path]
    labels: np.ndarray        # (N,) int64 emotion indices
    ignored: list[str] = field(default_factory=list)  # subfolders or rows that name no emotion


def load_photo_set(source: str | os.PathLike) -> PhotoSet:
    """The labelled photos of a folder (<emotion>/...) or a `path,label` CSV; FERError when there are none."""
    source = Path(source)
    if source.is_dir():
        pairs, ignored = [], []
        for folder in sorted(p for p in source.iterdir() if p.is_dir()):
            emotion = emotion_of_folder(folder.name)
            if emotion is None:
                ignored.append(folder.name)
                continue
            pairs += [(p, emotion) for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS]
    elif source.suffix.lower() == ".csv":
        pairs, ignored = _csv_pairs(source)
    else:
        raise FERError(f"--photos {shown(source, 200)}: give a folder with one subfolder per emotion, or a CSV of "
                       f"path,label rows")
    if not pairs:
        raise FERError(f"no labelled photos in {shown(source, 200)}: expected subfolders named after the emotions "
                       f"({', '.join(EMOTIONS)}) holding images, or CSV rows path,label")
    return PhotoSet(source.name, [p for p, _ in pairs], np.array([EMOTIONS.index(e) for _, e in pairs]), ignored)


def _csv_pairs(path: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    rows = list(csv.reader(io.StringIO(read_text_file(path, "photo list"))))
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    pairs, ignored = [], []
    for number, row in enumerate(rows, 2):
        emotion = emotion_of_folder(row[1]) if len(row) >= 2 else None
        if emotion is None:
            ignored.append(f"line {number}")
            continue
        photo = Path(row[0].strip())
        pairs.append((photo if photo.is_absolute() else path.parent / photo, emotion))
    return pairs, ignored


def score_photos(recognizer, photos: PhotoSet, views: int = 1, stress: bool = False, progress=None) -> dict:
    """What `evaluate --photos` reports: faces found, accuracy over all photos (no face = wrong) and over those
    with a face, macro-F1, per-class accuracy, the confusion matrix (a last column for 'no face'), milliseconds per
    photo (decoding, detection, framing and classification), and with `stress` the same per stress kind. An
    unreadable photo counts as wrong and is listed."""
    # places each stress on the clean photo: Haar's plain scan, the same for every pipeline and environment
    locate = FaceDetector(from_environment=False) if stress else None
    predicted, seconds, unreadable = [], [], []
    for i, path in enumerate(photos.paths):
        start = time.perf_counter()
        try:
            rgb = read_image(path)
            decoding = time.perf_counter() - start
        except ImageError as exc:
            unreadable.append({"file": str(path), "reason": str(exc)})
            predicted.append(-1)
            if progress is not None:
                progress(i + 1, len(photos.paths))
            continue
        if stress:
            clean = locate.detect(rgb)
            rgb = stressed(rgb, i, clean[0].box if clean else None)
        start = time.perf_counter()  # the stress copy's making is not the pipeline's time
        faces = recognizer.predict(rgb, tta=views > 1, views=views)
        seconds.append(decoding + time.perf_counter() - start)
        predicted.append(EMOTIONS.index(faces[0].label) if faces else -1)
        if progress is not None:
            progress(i + 1, len(photos.paths))
    predicted = np.array(predicted)
    report = _report(photos.labels, predicted)
    report.update(photos=photos.name, n=len(photos.paths), unreadable=unreadable, stress=stress, tta_views=views,
                  ms_per_photo=1000 * float(np.median(seconds)) if seconds else None,
                  ms_per_photo_mean=1000 * float(np.mean(seconds)) if seconds else None,
                  detector=recognizer.detector.describe())
    if stress:
        kinds = np.array([stress_of(i) for i in range(len(photos.paths))])
        report["by_stress"] = {k: _report(photos.labels[kinds == k], predicted[kinds == k], brief=True)
                               for k in STRESSES if (kinds == k).any()}
    return report


def _report(labels: np.ndarray, predicted: np.ndarray, brief: bool = False) -> dict:
    """Figures over all photos (a photo without a face, -1, is wrong) and over the photos with a face."""
    found = predicted >= 0
    report = {"faces_found": float(found.mean()) if len(found) else 0.0,
              "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
              "accuracy_with_face": float((predicted[found] == labels[found]).mean()) if found.any() else 0.0}
    if brief:
        return report
    with_none = np.where(found, predicted, len(EMOTIONS))  # 'no face' as an eighth predicted class
    classes = list(range(len(EMOTIONS)))
    matrix = confusion_matrix(labels, with_none, labels=classes + [len(EMOTIONS)])[:len(EMOTIONS)]
    per_class = {e: float((predicted[labels == k] == k).mean()) if (labels == k).any() else None
                 for k, e in enumerate(EMOTIONS)}
    report.update(macro_f1=float(f1_score(labels, with_none, labels=classes, average="macro", zero_division=0)),
                  per_class=per_class, confusion_matrix=matrix.astype(int).tolist(), columns=list(EMOTIONS) + [NO_FACE])
    return report

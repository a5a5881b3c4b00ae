"""Labelled faces from outside FER2013: a folder with one subfolder per emotion (DIR/happy/*.jpg, ...).

`python -m fer_core evaluate --faces DIR` scores a model on them: the check that it works on faces that do
not come from FER2013 (other cameras, lighting, resolutions, posed datasets such as JAFFE or CK+). Each
image is one face: the largest face the detector finds, as Predict would crop it, or the whole image
(`detector=None`) for folders of face crops.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import FERError, ImageError
from ..labels import EMOTIONS
from .faces import FaceDetector, whole_image_face
from .framing import crop_face
from .images import IMAGE_EXTENSIONS, read_image

# folder names other datasets use for our seven emotions
ALIASES = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "afraid": "fear", "happiness": "happy",
           "sadness": "sad", "surprised": "surprise"}


@dataclass
class FaceFolder:
    crops: np.ndarray                 # (N, 48, 48) uint8 grayscale faces
    labels: np.ndarray                # (N,) int64 emotion indices
    files: list[str]                  # paths relative to the folder
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"}: unreadable, or no face found
    ignored_folders: list[str] = field(default_factory=list)  # subfolders that name no emotion


def emotion_of_folder(name: str) -> str | None:
    name = name.strip().lower()
    name = ALIASES.get(name, name)
    return name if name in EMOTIONS else None


def load_face_folder(root: str | os.PathLike, detector: FaceDetector | None) -> FaceFolder:
    """Every image under root/<emotion>/ (sub-subfolders included), cropped to 48x48 grayscale."""
    root = Path(root)
    if not root.is_dir():
        raise FERError(f"{root} is not a folder: give a folder with one subfolder per emotion "
                       f"({', '.join(EMOTIONS)})")
    crops, labels, files, skipped, ignored = [], [], [], [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = emotion_of_folder(folder.name)
        if emotion is None:
            ignored.append(folder.name)
            continue
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            relative = str(path.relative_to(root))
            try:
                rgb = read_image(path, name=relative)
            except ImageError as exc:
                skipped.append({"file": relative, "reason": str(exc)})
                continue
            faces = detector.detect(rgb) if detector is not None else [whole_image_face(rgb)]
            if not faces:
                skipped.append({"file": relative, "reason": "no face found"})
                continue
            crops.append(crop_face(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), faces[0].box, angle=faces[0].angle))
            labels.append(EMOTIONS.index(emotion))
            files.append(relative)
    if not crops:
        found = f"; its subfolders are {', '.join(ignored)}" if ignored else ""
        raise FERError(f"no usable face image in {root}: expected subfolders named after the emotions "
                       f"({', '.join(EMOTIONS)}) holding images{found}"
                       + (f" ({len(skipped)} images skipped, e.g. {skipped[0]['file']}: {skipped[0]['reason']})"
                          if skipped else ""))
    return FaceFolder(np.stack(crops), np.array(labels, dtype=np.int64), files, skipped, ignored)

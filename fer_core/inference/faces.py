"""Face detection and cropping: OpenCV's Haar cascade offline by default, YuNet when its ONNX file is set.

Detection runs on a copy whose longest side is at most `detect_side` pixels (faster; faces smaller
than about 5% of the image side are missed), and boxes are mapped back to the full image. A tracker can
search only near the faces it follows (`detect(rgb, near=boxes)`), a fraction of a full scan's cost.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FERError

YUNET_ENV = "FER_YUNET_MODEL"  # path of face_detection_yunet*.onnx from OpenCV's model zoo
FACE_SIZE = 48
# FER2013 faces were framed by a face detector with some room around the face; Haar and YuNet boxes
# end at the eyebrows and chin, so a square crop with 10% margin per side is closer to FER2013 framing.
CROP_MARGIN = 0.10
# a face tracked from one detection to the next is searched for in its box grown by this much per side
NEAR_GROWTH = 0.5


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the full image
    score: float | None = None      # detector confidence (YuNet); None for Haar and whole-image faces


class FaceDetector:
    """`detect(rgb)` -> faces, largest first (`detect(rgb, near=boxes)`: only around those boxes).
    Haar unless a YuNet model path is given or in $FER_YUNET_MODEL."""

    def __init__(self, yunet_model: str | os.PathLike | None = None, detect_side: int = 320,
                 min_face_fraction: float = 0.08, yunet_threshold: float = 0.7):
        yunet_model = yunet_model if yunet_model not in (None, "") else os.environ.get(YUNET_ENV) or None
        self.detect_side = detect_side
        self.min_face_fraction = min_face_fraction
        if yunet_model:
            path = Path(yunet_model).expanduser()
            if not path.is_file():
                raise FERError(f"YuNet model not found at {path}: give the path of face_detection_yunet*.onnx "
                               f"(OpenCV model zoo), or leave it empty to use the Haar cascade")
            try:
                self._yunet = cv2.FaceDetectorYN.create(str(path), "", (320, 320), yunet_threshold, 0.3, 50)
            except cv2.error:
                raise FERError(f"{path} is not a YuNet model OpenCV can load") from None
            self._yunet_lock = threading.Lock()
            self.backend, self.model_path = "yunet", str(path)
        else:
            cascade = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            self._haar = cv2.CascadeClassifier(str(cascade))
            if self._haar.empty():
                raise FERError(f"OpenCV's Haar cascade is missing ({cascade}): reinstall opencv-python-headless<5")
            self.backend, self.model_path = "haar", None

    def detect(self, rgb: np.ndarray, near: list[tuple[int, int, int, int]] | None = None) -> list[Face]:
        """Faces, largest first.

        With `near` (boxes of faces found in an earlier frame) only the regions around those boxes are searched,
        for faces at least half their size: a tracker's cheap update, several times faster than a full scan. It
        finds no face outside those regions: new faces wait for the next full scan."""
        h, w = rgb.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        if near is None:
            searches = [((0, 0, w, h), self.min_face_fraction * min(h, w))]
        else:
            searches = [(grown_box(box, NEAR_GROWTH, w, h), min(box[2:]) / 2) for box in near]
        faces: list[Face] = []
        for region, min_side in searches:
            for face in self._search(rgb, region, scale, max(20, round(min_side * scale))):
                # YuNet has no minimum size (enforced near tracks only, as before for full scans); overlapping
                # regions of nearby faces find a face twice: keep it once
                too_small = near is not None and min(face.box[2:]) < min_side
                if not too_small and not any(box_iou(face.box, f.box) > 0.5 for f in faces):
                    faces.append(face)
        return sorted(faces, key=lambda f: -f.box[2] * f.box[3])

    def _search(self, rgb: np.ndarray, region: tuple[int, int, int, int], scale: float, min_side: int) -> list[Face]:
        """Faces in `region` of `rgb`, searched at `scale` (Haar: at least `min_side` pixels at that scale),
        in full-image pixels."""
        rx, ry, rw, rh = region
        if rw <= 0 or rh <= 0:  # a tracked box outside this frame: the camera's resolution changed
            return []
        h, w = rgb.shape[:2]
        part = rgb[ry:ry + rh, rx:rx + rw]
        small = cv2.resize(part, (max(1, round(rw * scale)), max(1, round(rh * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else part
        found = self._detect_yunet(small) if self.backend == "yunet" else self._detect_haar(small, min_side)
        faces = []
        for (x, y, bw, bh), score in found:
            x0, y0 = max(0, rx + round(x / scale)), max(0, ry + round(y / scale))
            x1, y1 = min(w, rx + round((x + bw) / scale)), min(h, ry + round((y + bh) / scale))
            if x1 > x0 and y1 > y0:
                faces.append(Face((x0, y0, x1 - x0, y1 - y0), score))
        return faces

    def _detect_haar(self, rgb: np.ndarray, min_side: int):
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        boxes = self._haar.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=5, minSize=(min_side, min_side))
        return [(tuple(int(v) for v in b), None) for b in boxes]

    def _detect_yunet(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        with self._yunet_lock:  # the input size is the model's state, and Live detects on threads of its own
            self._yunet.setInputSize((w, h))
            _, rows = self._yunet.detect(np.ascontiguousarray(rgb[..., ::-1]))  # YuNet wants BGR
        return [] if rows is None else [((r[0], r[1], r[2], r[3]), float(r[14])) for r in rows]


def grown_box(box: tuple[int, int, int, int], growth: float, width: int, height: int) -> tuple[int, int, int, int]:
    """`box` grown by `growth` x its side on every side, clipped to a width x height image."""
    x, y, w, h = box
    x0, y0 = max(0, round(x - growth * w)), max(0, round(y - growth * h))
    x1, y1 = min(width, round(x + w + growth * w)), min(height, round(y + h + growth * h))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def box_iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union else 0.0


def whole_image_face(rgb: np.ndarray) -> Face:
    """The whole image as one face: for photos that are already face crops (e.g. FER2013's 48x48)."""
    return Face((0, 0, rgb.shape[1], rgb.shape[0]))


def crop_region(box: tuple[int, int, int, int], shape: tuple[int, ...], margin: float = CROP_MARGIN
                ) -> tuple[int, int, int]:
    """(x0, y0, side): the square, in image pixels, that crop_face cuts for `box` (it may reach past the image)."""
    x, y, w, h = box
    side = max(w, h) if (x, y, w, h) == (0, 0, shape[1], shape[0]) else max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2  # (the whole image as the face gets no margin: there is nothing around it)
    return round(cx - side / 2), round(cy - side / 2), max(1, round(side))


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], margin: float = CROP_MARGIN,
              size: int = FACE_SIZE) -> np.ndarray:
    """A size x size uint8 crop: the box made square with `margin` per side, edges replicated past the image.
    Works on RGB images too (the Predict page shows a face's colour crop under its saliency map)."""
    x0, y0, side = crop_region(box, gray.shape, margin)
    x1, y1 = x0 + side, y0 + side
    pad = max(0, -x0, -y0, x1 - gray.shape[1], y1 - gray.shape[0])
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    crop = gray[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    interp = cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)

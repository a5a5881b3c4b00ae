"""Face detection and cropping: OpenCV's Haar cascade offline by default, YuNet when its ONNX file is set.

Detection runs on a copy whose longest side is at most `detect_side` pixels (faster; faces smaller
than about 5% of the image side are missed), and boxes are mapped back to the full image. A tracker can
search only near the faces it follows (`detect(rgb, near=boxes)`), a fraction of a full scan's cost.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import FERError
from .framing import EyeFinder, eyes_angle

YUNET_ENV = "FER_YUNET_MODEL"  # path of face_detection_yunet*.onnx from OpenCV's model zoo
# a face tracked from one detection to the next is searched for in its box grown by this much per side
NEAR_GROWTH = 0.5
# a thorough search (photos) that found nothing tries these in turn: the photo padded (a face cut by its edges),
# enlarged (a small photo), searched finer with OpenCV's second frontal cascade (the default one misses some clear
# faces, darker skin among them) and turned either way by 20 degrees (a tilted head)
RETRIES = ("pad", "upscale", "finer", "20", "-20")
PAD_FRACTION = 0.35  # of the photo's longer side, on every side
SMALL_PHOTO = 480    # a photo with a shorter longest side is enlarged to it


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in pixels of the full image
    score: float | None = None      # detector confidence (YuNet); None for Haar and whole-image faces
    angle: float = 0.0              # degrees (counter-clockwise) that level the eyes; 0 where they were not found


class FaceDetector:
    """`detect(rgb)` -> faces, largest first (`detect(rgb, near=boxes)`: only around those boxes).
    Haar unless a YuNet model path is given or in $FER_YUNET_MODEL."""

    def __init__(self, yunet_model: str | os.PathLike | None = None, detect_side: int = 320,
                 min_face_fraction: float = 0.08, yunet_threshold: float = 0.7, from_environment: bool = True):
        if yunet_model in (None, ""):  # `from_environment=False`: Haar, whatever $FER_YUNET_MODEL says
            yunet_model = os.environ.get(YUNET_ENV) if from_environment else None
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
            self._haar_alt2 = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_alt2.xml"))
            self._eyes = EyeFinder()

    def describe(self) -> str:
        return f"YuNet ({Path(self.model_path).name})" if self.backend == "yunet" else "OpenCV Haar cascade"

    def detect(self, rgb: np.ndarray, near: list[tuple[int, int, int, int]] | None = None,
               thorough: bool = False) -> list[Face]:
        """Faces, largest first, each with the angle that levels its eyes.

        With `near` (boxes of faces found in an earlier frame) only the regions around those boxes are searched,
        for faces at least half their size: a tracker's cheap update, several times faster than a full scan. It
        finds no face outside those regions: new faces wait for the next full scan.
        `thorough` (photos): when the scan finds nothing, look again in the ways users' photos hide faces
        (RETRIES): a face cut by the photo's edges, a small photo, a tilted head."""
        faces = self._scan(rgb, near)
        if not faces and thorough and near is None:
            faces = self._retry(rgb)
        if self.backend == "haar" and faces:  # YuNet's landmarks gave the angle already
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            faces = [f if f.angle else replace(f, angle=self._eyes.angle(gray, f.box)) for f in faces]
        return faces

    def _scan(self, rgb: np.ndarray, near: list[tuple[int, int, int, int]] | None) -> list[Face]:
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

    def _retry(self, rgb: np.ndarray) -> list[Face]:
        """The first of RETRIES that finds a face, its boxes mapped back to `rgb` (clipped to it)."""
        h, w = rgb.shape[:2]
        for kind in RETRIES:
            if kind == "pad":  # a tight crop: the cascade needs some room around a face
                pad = round(PAD_FRACTION * max(h, w))
                padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
                faces = [replace(f, box=(f.box[0] - pad, f.box[1] - pad, *f.box[2:]))
                         for f in self._confirmed(padded, self._scan(padded, None))]
            elif kind == "upscale":  # a small photo: faces under the cascade's 24-pixel window
                if max(h, w) >= SMALL_PHOTO:
                    continue
                factor = SMALL_PHOTO / max(h, w)
                big = cv2.resize(rgb, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_CUBIC)
                faces = [replace(f, box=tuple(round(v / factor) for v in f.box))
                         for f in self._confirmed(big, self._scan(big, None))]
            elif kind == "finer":
                faces = self._confirmed(rgb, self._finer(rgb))
            else:  # a tilted head: turn the photo; the face's angle is then that turn
                angle = float(kind)
                matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
                turned = cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
                back = cv2.invertAffineTransform(matrix)
                faces = []
                for f in self._confirmed(turned, self._scan(turned, None)):
                    x, y, bw, bh = f.box
                    cx, cy = back @ np.array([x + bw / 2, y + bh / 2, 1.0])
                    faces.append(Face((round(cx - bw / 2), round(cy - bh / 2), bw, bh), f.score, angle + f.angle))
            # a box may reach past the photo (a face cut by its edge): the crop replicates the edge, as FER2013's
            faces = [f for f in faces if _overlaps(f.box, w, h)]
            if faces:
                return faces
        return []

    def _confirmed(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """A retry's faces that a second look confirms: with Haar, two eyes found inside the box (each retry looks
        harder, and finds faces in textures too: 14 more false faces in 140 photos without one, unconfirmed)."""
        if self.backend == "yunet" or not faces:
            return faces  # YuNet's own score already stands for its confidence
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return [f for f in faces if self._eyes.eyes(gray, f.box) is not None]

    def _finer(self, rgb: np.ndarray) -> list[Face]:
        """Haar: the alt2 cascade at twice the detection size, with 4 neighbours; YuNet: at twice the size."""
        h, w = rgb.shape[:2]
        scale = min(1.0, 2 * self.detect_side / max(h, w))
        if self.backend == "yunet":
            return self._search(rgb, (0, 0, w, h), scale, 20)
        small = cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else rgb
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        side = max(20, round(self.min_face_fraction * min(small.shape[:2])))
        boxes = self._haar_alt2.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=4, minSize=(side, side))
        return sorted((Face(tuple(round(int(v) / scale) for v in b)) for b in boxes), key=lambda f: -f.box[2] * f.box[3])

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
        for (x, y, bw, bh), score, eyes in found:
            x0, y0 = max(0, rx + round(x / scale)), max(0, ry + round(y / scale))
            x1, y1 = min(w, rx + round((x + bw) / scale)), min(h, ry + round((y + bh) / scale))
            if x1 > x0 and y1 > y0:
                faces.append(Face((x0, y0, x1 - x0, y1 - y0), score, eyes_angle(*eyes) if eyes else 0.0))
        return faces

    def _detect_haar(self, rgb: np.ndarray, min_side: int):
        gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        boxes = self._haar.detectMultiScale(gray, scaleFactor=1.15, minNeighbors=5, minSize=(min_side, min_side))
        return [(tuple(int(v) for v in b), None, None) for b in boxes]

    def _detect_yunet(self, rgb: np.ndarray):
        h, w = rgb.shape[:2]
        with self._yunet_lock:  # the input size is the model's state, and Live detects on threads of its own
            self._yunet.setInputSize((w, h))
            _, rows = self._yunet.detect(np.ascontiguousarray(rgb[..., ::-1]))  # YuNet wants BGR
        # each row: box, five landmarks (the eyes first) and the score; eyes in image order, left one first
        return [] if rows is None else [((r[0], r[1], r[2], r[3]), float(r[14]),
                                         tuple(sorted(((r[4], r[5]), (r[6], r[7]))))) for r in rows]


def _overlaps(box: tuple[int, int, int, int], width: int, height: int) -> bool:
    """True when at least half of `box` lies inside a width x height photo."""
    x, y, w, h = box
    inside = max(0, min(width, x + w) - max(0, x)) * max(0, min(height, y + h) - max(0, y))
    return w > 0 and h > 0 and inside >= 0.5 * w * h


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

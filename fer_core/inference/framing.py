"""How a face found in a photo becomes the 48x48 grayscale crop the network reads, framed as FER2013's faces are.

One place for Predict, Live, video, `predict` and `evaluate --photos`: the face's eyes are levelled (its `angle`,
from the detector's landmarks or OpenCV's eye cascade) and the crop is cut around the detector's box the way
FER2013 was cut, a frame measured rather than guessed. `python -m fer_core bench framing` measures it again:
FER2013 training faces, upscaled 4x and padded, go through the detector, and the box's side and centre are read
relative to the 48x48 crop. On 3,000 faces (seed 0): OpenCV's Haar cascade found 2,101 and its box side is a
median 0.974 of the crop, centred (offsets under 0.3%); YuNet found 2,730, its longer side 0.979, centred. So a
FER2013 crop is the box's longer side / BOX_SCALE, about 2.6% wider than the box. (It used to be 20% wider.)
"""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

FACE_SIZE = 48
BOX_SCALE = 0.975  # a detector box's longer side / the side of the FER2013 crop around it (measured, see above)
MAX_ANGLE = 30.0   # a tilt read from two eyes beyond this is taken for a wrong pair of eyes ...
MIN_ANGLE = 6.0    # ... and one under this for noise: a frontal face is cropped as it is (cfee: levelling every face
                   # cost 1 point, 66.0% -> 65.0%; levelling tilts of 6 degrees or more keeps what it gains on tilts)


def crop_region(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(x0, y0, side): the square, in image pixels, that crop_face cuts for `box` (it may reach past the image).
    The whole image as the face gets no margin: there is nothing around it (a FER2013 crop reaches the network
    unchanged)."""
    x, y, w, h = box
    side = max(w, h) if (x, y, w, h) == (0, 0, shape[1], shape[0]) else max(w, h) / BOX_SCALE
    cx, cy = x + w / 2, y + h / 2
    return round(cx - side / 2), round(cy - side / 2), max(1, round(side))


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], size: int = FACE_SIZE,
              angle: float = 0.0) -> np.ndarray:
    """A size x size crop of `image` (grayscale, or RGB for display) framed like FER2013 around `box`, rotated by
    `angle` degrees (counter-clockwise) about the box's centre to level the eyes; edges replicated past the image."""
    x0, y0, side = crop_region(box, image.shape)
    reach = side if not angle else math.ceil(side * (abs(math.cos(math.radians(angle)))
                                                     + abs(math.sin(math.radians(angle)))))
    grow = (reach - side) // 2 + 1 if angle else 0
    region = _padded_square(image, x0 - grow, y0 - grow, side + 2 * grow)
    if angle:
        centre = region.shape[1] / 2, region.shape[0] / 2
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
        region = cv2.warpAffine(region, matrix, region.shape[1::-1], flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)[grow:grow + side, grow:grow + side]
    interp = cv2.INTER_AREA if region.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(region, (size, size), interpolation=interp)


def _padded_square(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    x1, y1 = x0 + side, y0 + side
    pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return image[y0 + pad:y1 + pad, x0 + pad:x1 + pad]


def eyes_angle(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> float:
    """The rotation (degrees, counter-clockwise) that levels the eyes; `left_eye` is the one on the image's left."""
    angle = math.degrees(math.atan2(right_eye[1] - left_eye[1], right_eye[0] - left_eye[0]))
    return angle if MIN_ANGLE <= abs(angle) <= MAX_ANGLE else 0.0


EYE_SEARCH_WIDTH = 120  # pixels: eyes are found as well in a face this wide, and faster


class EyeFinder:
    """The two eyes of a face from OpenCV's eye cascade (for detectors without landmarks), searched in the upper
    part of the box; None when two plausible eyes are not found (the face is then cropped unrotated)."""

    def __init__(self):
        self._cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_eye.xml"))

    def angle(self, gray: np.ndarray, box: tuple[int, int, int, int]) -> float:
        eyes = self.eyes(gray, box)
        return eyes_angle(*eyes) if eyes else 0.0

    def eyes(self, gray: np.ndarray, box: tuple[int, int, int, int]):
        x, y, w, h = box
        top, bottom = max(0, y + round(0.1 * h)), min(gray.shape[0], y + round(0.6 * h))
        left, right = max(0, x), min(gray.shape[1], x + w)
        if self._cascade.empty() or bottom - top < 12 or right - left < 24:
            return None
        part = gray[top:bottom, left:right]
        scale = min(1.0, EYE_SEARCH_WIDTH / part.shape[1])
        if scale < 1.0:
            part = cv2.resize(part, (round(part.shape[1] * scale), round(part.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
        side = max(8, round(w * scale * 0.14))  # an eye (with its lids) is a fifth to a quarter of the face's width
        found = self._cascade.detectMultiScale(part, scaleFactor=1.15, minNeighbors=3, minSize=(side, side),
                                               maxSize=(side * 2, side * 2))
        centres = [((ex + ew / 2) / scale + left, (ey + eh / 2) / scale + top) for ex, ey, ew, eh in found]
        left_eyes = [c for c in centres if c[0] < x + 0.5 * w]
        right_eyes = [c for c in centres if c[0] >= x + 0.5 * w]
        if not left_eyes or not right_eyes:
            return None
        pairs = [(a, b) for a in left_eyes for b in right_eyes if 0.25 * w <= b[0] - a[0] <= 0.7 * w]
        if not pairs:
            return None
        return min(pairs, key=lambda p: abs(p[0][1] - p[1][1]))  # the most level pair: the likeliest true eyes

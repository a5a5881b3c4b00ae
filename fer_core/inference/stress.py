"""A stress copy of a photo set, made by code in memory (nothing written): the hard cases users bring that a clean,
posed, frontal set lacks. Photo i gets STRESSES[i % 6], drawn with a generator seeded by i, so the copy is the
same on every run and every machine.

- tight: cut around the face so forehead and chin are lost (a selfie crop);
- small: the whole photo shrunk so the face is 60-120 pixels wide;
- tilted: rotated by 10-25 degrees either way;
- gray: grayscale;
- dark: dark and low in contrast;
- jpeg: re-encoded at JPEG quality 20.
"""
from __future__ import annotations

import cv2
import numpy as np

STRESSES = ("tight", "small", "tilted", "gray", "dark", "jpeg")


def stress_of(index: int) -> str:
    return STRESSES[index % len(STRESSES)]


def stressed(rgb: np.ndarray, index: int, face_box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Photo `index`'s stressed copy. `face_box` (x, y, w, h; the clean photo's face, from a detector) places the
    tight crop and sizes the small copy; without one, the photo's centre and a face a third of its width."""
    rng = np.random.default_rng(index)
    h, w = rgb.shape[:2]
    x, y, bw, bh = face_box or (w // 3, h // 4, w // 3, w // 3)
    kind = stress_of(index)
    if kind == "tight":  # the box shrunk to 75-85%: brows and chin cut
        keep = rng.uniform(0.75, 0.85)
        cx, cy, side = x + bw / 2, y + bh * 0.55, max(bw, bh) * keep
        x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
        return np.ascontiguousarray(rgb[y0:y0 + round(side), x0:x0 + round(side)])
    if kind == "small":
        scale = rng.uniform(60, 120) / max(bw, 1)
        return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    if kind == "tilted":
        angle = rng.uniform(10, 25) * rng.choice([-1, 1])
        matrix = cv2.getRotationMatrix2D((x + bw / 2, y + bh / 2), angle, 1.0)
        return cv2.warpAffine(rgb, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if kind == "gray":
        return cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    if kind == "dark":
        gain, offset = rng.uniform(0.25, 0.4), rng.uniform(5, 20)
        return np.clip(rgb.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 20])
    return np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])

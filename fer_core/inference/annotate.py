"""Drawing results on images: a box in the emotion's colour with "label 87%" above it.

One function for photos, video frames and the live webcam, so all three look the same; it uses
OpenCV drawing, about a millisecond per frame.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..labels import EMOTION_COLORS


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return tuple(int(color[i:i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def draw_faces(rgb: np.ndarray, faces, copy: bool = True) -> np.ndarray:
    """`rgb` (H, W, 3) uint8 with each face's box and label; `faces` are FaceResults (box, label, confidence)."""
    out = rgb.copy() if copy else rgb
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 250))
    font_scale = max(0.5, min(h, w) / 700)
    for face in faces:
        x, y, bw, bh = face.box
        color = hex_to_rgb(EMOTION_COLORS[face.label])
        cv2.rectangle(out, (x, y), (x + bw, y + bh), color, thick)
        text = f"{face.label} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick // 2 + 1)
        top = y - th - base - 2 * thick if y - th - base - 2 * thick >= 0 else y + bh  # below the box at the top edge
        cv2.rectangle(out, (x, top), (x + tw + 2 * thick, top + th + base + 2 * thick), color, -1)
        ink = (0, 0, 0) if sum(color) > 450 else (255, 255, 255)
        cv2.putText(out, text, (x + thick, top + th + thick), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                    thick // 2 + 1, cv2.LINE_AA)
    return out

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
    thick = max(1, round(min(h, w) / 250))
    font_scale = max(0.3, min(h, w) / 700)
    for face in faces:
        x, y, bw, bh = face.box
        color = hex_to_rgb(EMOTION_COLORS[face.label])
        cv2.rectangle(out, (x, y), (x + bw, y + bh), color, thick)
        text = f"{face.label} {face.confidence:.0%}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick // 2 + 1)
        x = max(0, min(x, w - tw - 2 * thick))  # the label stays inside a small photo
        label_h = th + base + 2 * thick
        top = y - label_h if y - label_h >= 0 else y + bh  # below the box at the top edge ...
        top = max(0, min(top, h - label_h))  # ... and inside the photo when the box fills it
        cv2.rectangle(out, (x, top), (x + tw + 2 * thick, top + label_h), color, -1)
        ink = (0, 0, 0) if sum(color) > 450 else (255, 255, 255)
        cv2.putText(out, text, (x + thick, top + th + thick), cv2.FONT_HERSHEY_SIMPLEX, font_scale, ink,
                    thick // 2 + 1, cv2.LINE_AA)
    return out


def saliency_overlay(face_rgb: np.ndarray, saliency: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A face crop (H, W, 3) uint8 with a saliency map in [0, 1] laid over it in the JET colours (red: most)."""
    if saliency.shape != face_rgb.shape[:2]:
        saliency = cv2.resize(saliency, (face_rgb.shape[1], face_rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(saliency, 0, 1)), cv2.COLORMAP_JET)
    return cv2.addWeighted(face_rgb, 1 - alpha, cv2.cvtColor(heat, cv2.COLOR_BGR2RGB), alpha, 0)


def draw_saliency(rgb: np.ndarray, faces, emotion: str | None = None) -> np.ndarray:
    """`rgb` with each face's saliency map (for `emotion`, else its predicted label) laid over the square region
    the network saw; faces without that map are left as they are. Draw the boxes after, with draw_faces."""
    from .framing import crop_region
    out = rgb.copy()
    h, w = out.shape[:2]
    for face in faces:
        saliency = face.saliency.get(emotion or face.label)
        if saliency is None:
            continue
        x0, y0, side = crop_region(face.box, rgb.shape)
        if face.angle:  # the map is of the levelled crop: turn it back as the face sits in the photo
            saliency = cv2.resize(saliency, (side, side), interpolation=cv2.INTER_LINEAR) \
                if saliency.shape != (side, side) else saliency
            saliency = cv2.warpAffine(saliency, cv2.getRotationMatrix2D((side / 2, side / 2), -face.angle, 1.0),
                                      (side, side), flags=cv2.INTER_LINEAR, borderValue=0)
        top, left, bottom, right = max(0, y0), max(0, x0), min(h, y0 + side), min(w, x0 + side)
        if bottom > top and right > left:
            part = saliency[top - y0:bottom - y0, left - x0:right - x0]
            out[top:bottom, left:right] = saliency_overlay(out[top:bottom, left:right], part)
    return out


def face_heat_map(rgb: np.ndarray, face, emotion: str | None = None, side: int | None = None) -> np.ndarray:
    """The square region the network saw of `face` (its colour crop, `side` pixels wide; default its size in the
    image) under the face's saliency map for `emotion` (default its label)."""
    from .framing import crop_face, crop_region
    crop = crop_face(rgb, face.box, size=side or crop_region(face.box, rgb.shape)[2], angle=face.angle)
    return saliency_overlay(crop, face.saliency[emotion or face.label])

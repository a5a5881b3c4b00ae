"""A real face without shipping data: scikit-image's astronaut photo (NASA, public domain), as a photo
and as a webcam-like clip."""
from __future__ import annotations

import io

import cv2
import numpy as np

WIDTH, HEIGHT = 640, 480


def photo_jpeg() -> bytes:
    """The astronaut at 480x480 centred on a grey 640x480 canvas, as a JPEG: one face about 90 px wide."""
    from PIL import Image
    from skimage import data
    canvas = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    canvas[:, 80:560] = cv2.resize(data.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def astronaut_clip(n_frames: int = 60, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """RGB frames of the astronaut's head moving a few pixels per frame, as a webcam would see a head."""
    from skimage.data import astronaut
    side = min(height, width) * 7 // 8
    head = astronaut()[0:300, 75:375]  # head and shoulders: a face about a third of the frame height
    photo = cv2.resize(head, (side, side), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n_frames):
        phase = 2 * np.pi * i / max(n_frames, 1)
        x = (width - side) // 2 + round(12 * np.sin(phase))
        y = (height - side) // 2 + round(6 * np.cos(phase))
        frame = np.full((height, width, 3), 40, np.uint8)
        frame[y:y + side, x:x + side] = photo
        frames.append(frame)
    return frames

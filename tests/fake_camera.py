"""A .y4m clip for Chromium's fake camera: a real face photo (skimage's astronaut) in a 640x480 frame."""
from pathlib import Path

import cv2
import numpy as np


def write_face_clip(path: Path, frames: int = 30, size=(640, 480)) -> Path:
    """YUV4MPEG2 (I420) frames of the astronaut photo drifting a few pixels, as a webcam would see a head."""
    from skimage.data import astronaut
    w, h = size
    photo = cv2.resize(astronaut(), (400, 400))
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{w} H{h} F15:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            canvas = np.full((h, w, 3), 90, np.uint8)
            x = 120 + int(6 * np.sin(i / 5))
            canvas[40:440, x:x + 400] = photo
            fh.write(b"FRAME\n" + cv2.cvtColor(canvas, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path

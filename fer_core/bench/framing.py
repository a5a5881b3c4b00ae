"""`python -m fer_core bench framing`: where a face detector's box sits inside FER2013's 48x48 crops, the frame that
inference/framing.py cuts real photos to. Training faces are upscaled 4x and padded by half their side (edges
replicated) so the detector has room; the box's longer side and its centre are read relative to the crop."""
from __future__ import annotations

import cv2
import numpy as np

from ..data.fer2013 import load_dataset
from ..inference.faces import FaceDetector
from ..inference.framing import BOX_SCALE

UPSCALE, PAD = 4, 0.5


def measure(images: np.ndarray, detector: FaceDetector) -> np.ndarray:
    """(found, 3): each found face's box side / crop side, and its centre's offset (x, y) / crop side."""
    side = images.shape[1] * UPSCALE
    pad = int(side * PAD)
    rows = []
    for face in images:
        big = cv2.copyMakeBorder(cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC), pad, pad, pad, pad,
                                 cv2.BORDER_REPLICATE)
        found = detector.detect(cv2.cvtColor(big, cv2.COLOR_GRAY2RGB))
        if found:
            x, y, w, h = found[0].box
            rows.append((max(w, h) / side, (x + w / 2 - pad) / side - 0.5, (y + h / 2 - pad) / side - 0.5))
    return np.array(rows).reshape(-1, 3)


def run(args) -> int:
    images = load_dataset(args.data)["train"].images
    pick = np.random.default_rng(0).choice(len(images), min(args.faces, len(images)), replace=False)
    detector = FaceDetector(args.yunet)
    rows = measure(images[pick], detector)
    print(f"{detector.describe()}: a face found in {len(rows)} of {len(pick)} FER2013 training faces (seed 0)")
    if len(rows):
        scale, dx, dy = np.median(rows, 0)
        q1, q3 = np.percentile(rows[:, 0], [25, 75])
        print(f"box side / crop side: median {scale:.3f} (quartiles {q1:.3f}-{q3:.3f}); centre offset x {dx:+.3f}, "
              f"y {dy:+.3f} of the side. framing.BOX_SCALE is {BOX_SCALE}")
    return 0

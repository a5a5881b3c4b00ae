"""`python -m fer_core bench detection --photos DIR`: how often the face detector finds the face of labelled photos
(clean and the stress copy) and how often it finds a face where there is none, for the plain scan (what Live and
video use) and the thorough search photos get (FaceDetector.detect's retries).

The negatives are photos without a face made from scikit-image's bundled pictures (a cup, a cat, a rocket, coins,
text, textures...): each whole, five seeded crops of it, and a small copy; 140 in all.
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from ..inference.faces import FaceDetector
from ..inference.images import read_image
from ..inference.photos import load_photo_set
from ..inference.stress import stressed

# scikit-image's pictures that hold no face (its 'camera' shows a man and 'astronaut' a woman: left out)
NEGATIVE_PICTURES = ("coffee", "chelsea", "rocket", "coins", "moon", "page", "text", "horse", "hubble_deep_field",
                     "immunohistochemistry", "brick", "grass", "gravel", "checkerboard", "clock", "colorwheel", "logo",
                     "microaneurysms", "retina", "cell")


def negatives() -> list[np.ndarray]:
    import skimage.data
    out = []
    for k, name in enumerate(NEGATIVE_PICTURES):
        rgb = read_image(getattr(skimage.data, name)())
        rng = np.random.default_rng(k)
        h, w = rgb.shape[:2]
        out.append(rgb)
        for _ in range(5):
            side = int(min(h, w) * rng.uniform(0.3, 0.7))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            out.append(np.ascontiguousarray(rgb[y:y + side, x:x + side]))
        out.append(cv2.resize(rgb, (max(1, w // 3), max(1, h // 3)), interpolation=cv2.INTER_AREA))
    return out


def run(args) -> int:
    detector = FaceDetector(args.yunet)
    photos = load_photo_set(args.photos) if args.photos else None
    images = [read_image(p) for p in photos.paths] if photos else []
    locate = FaceDetector(from_environment=False)  # places the stress copy as evaluate --photos does
    clean_faces = [locate.detect(rgb) for rgb in images]
    stress = [stressed(rgb, i, faces[0].box if faces else None) for i, (rgb, faces) in enumerate(zip(images, clean_faces))]
    negative = negatives()
    print(f"detector: {detector.describe()}; {len(images)} photos of {photos.name if photos else '-'}, "
          f"{len(negative)} negatives")
    print(f"{'search':10}{'clean found':>14}{'stress found':>14}{'false faces':>14}{'ms (stress)':>14}")
    for thorough in (False, True):
        found = [bool(detector.detect(rgb, thorough=thorough)) for rgb in images]
        start = time.perf_counter()
        stress_found = [bool(detector.detect(rgb, thorough=thorough)) for rgb in stress]
        seconds = time.perf_counter() - start
        false = sum(bool(detector.detect(rgb, thorough=thorough)) for rgb in negative)
        print(f"{'thorough' if thorough else 'plain':10}{np.mean(found) if found else 0:>14.1%}"
              f"{np.mean(stress_found) if stress_found else 0:>14.1%}{false:>9d} of {len(negative)}"
              f"{1000 * seconds / max(1, len(stress)):>14.1f}")
    return 0

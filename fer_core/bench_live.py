"""Live-page speed: a 640x480 clip with one face through the same frame processing as the Live page.

    python -m fer_core.bench_live                      # models/default.pt, a generated astronaut clip
    python -m fer_core.bench_live --model runs/<run>/best.pt --clip my_webcam.mp4

Prints processed frames per second for several detector intervals, with TTA off and on. The clip is
scikit-image's astronaut photo drifting slowly inside a 640x480 frame, as a webcam would see a head.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import cv2
import numpy as np
import torch

from .live import LiveProcessor, LiveSettings
from .tta import views_arg

WIDTH, HEIGHT = 640, 480


def astronaut_clip(n_frames: int = 60, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """RGB frames of a real face photo (skimage.data.astronaut) moving a few pixels per frame."""
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


def measure(processor: LiveProcessor, frames: list[np.ndarray], seconds: float) -> tuple[float, int]:
    """Processed frames per second looping over `frames` for about `seconds`; also the faces last seen."""
    processor.reset()
    for frame in frames[:3]:  # warm-up: first calls allocate
        processor.process(frame)
    processor.reset()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        processor.process(frames[count % len(frames)])
        count += 1
    return count / (time.perf_counter() - start), len(processor.status().faces)


def load_clip(path: str) -> list[np.ndarray]:
    from .video import iter_frames
    return [cv2.resize(rgb, (WIDTH, HEIGHT)) if rgb.shape[:2] != (HEIGHT, WIDTH) else rgb
            for _, _, rgb in iter_frames(path, 1)][:300]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="checkpoint (default: models/default.pt)")
    parser.add_argument("--clip", default=None, help="a video file instead of the generated astronaut clip")
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per setting")
    parser.add_argument("--detect-every", type=int, nargs="+", default=[1, 3, 5])
    parser.add_argument("--tta-views", type=views_arg, default=2, help="views for the TTA-on rows")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    from .inference import EmotionRecognizer
    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = EmotionRecognizer.load(args.model)
    frames = load_clip(args.clip) if args.clip else astronaut_clip()
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, OpenCV {cv2.__version__}")
    print(f"model: {recognizer.source}; detector: {recognizer.detector.backend}; "
          f"clip: {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]}"
          f"{' from ' + args.clip if args.clip else ' (astronaut, moving)'}")
    print(f"{'detect every':>12} {'TTA views':>9} {'frames/s':>9} {'ms/frame':>9} {'faces':>5}")
    results = {}
    for views in (1, args.tta_views):
        for every in args.detect_every:
            processor = LiveProcessor(recognizer, LiveSettings(detect_every=every, tta_views=views))
            fps, faces = measure(processor, frames, args.seconds)
            results[(every, views)] = fps
            print(f"{every:>12} {views:>9} {fps:>9.1f} {1000 / fps:>9.1f} {faces:>5}")
    base = results[(args.detect_every[0], 1)]
    for (every, views), fps in results.items():
        if (every, views) != (args.detect_every[0], 1):
            print(f"  detect every {every}, {views} view(s): {fps / base:.2f}x the speed of detect every "
                  f"{args.detect_every[0]} without TTA")


if __name__ == "__main__":
    main()

"""Live-page speed: a 640x480 clip with one face through the same frame processing as the Live page.

    python -m fer_core bench live                      # models/default.pt, a generated astronaut clip
    python -m fer_core bench live --model runs/<run>/best.pt --clip my_webcam.mp4

Prints processed frames per second for several detector intervals, with TTA off and on. The clip is
scikit-image's astronaut photo drifting slowly inside a 640x480 frame, as a webcam would see a head.
"""
from __future__ import annotations

import itertools
import os
import platform

import cv2
import numpy as np
import torch

from ..inference.live import LiveProcessor, LiveSettings
from .sample_faces import HEIGHT, WIDTH, astronaut_clip
from .timing import timed


def measure(processor: LiveProcessor, frames: list[np.ndarray], seconds: float) -> tuple[float, int]:
    """Processed frames per second looping over `frames` for about `seconds`; also the faces last seen."""
    processor.reset()
    for frame in frames[:3]:  # warm-up: first calls allocate
        processor.process(frame)
    processor.reset()
    upcoming = itertools.cycle(frames)
    per_frame, _ = timed(lambda: processor.process(next(upcoming)), seconds)
    return 1 / per_frame, len(processor.status().faces)


def load_clip(path: str) -> list[np.ndarray]:
    from ..inference.video import iter_frames
    return [cv2.resize(rgb, (WIDTH, HEIGHT)) if rgb.shape[:2] != (HEIGHT, WIDTH) else rgb
            for _, _, rgb in iter_frames(path, 1)][:300]


def run(args) -> None:
    from ..inference.recognizer import EmotionRecognizer
    if args.threads:
        torch.set_num_threads(args.threads)
    recognizer = EmotionRecognizer.load(args.model, engine=args.engine, batch=1, threads=1)  # as the Live page
    frames = load_clip(args.clip) if args.clip else astronaut_clip()
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads, OpenCV {cv2.__version__}")
    print(f"model: {recognizer.source}, run by {recognizer.engine}; detector: {recognizer.detector.backend}; "
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


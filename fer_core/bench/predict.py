"""Prediction speed: one 640x480 photo with one face, end to end, split into decode, detection and classification.

    python -m fer_core bench predict [--checkpoint CKPT] [--repeats 30] [--yunet FILE]

Figures are medians over `repeats` runs after a warm-up, with the model loaded once. The budget from
issue 6 is 50 ms with TTA on 2 CPU cores; the live webcam page needs detection + classification
without TTA under 50 ms (20 fps). Printed, never asserted: other processes on the machine slow it down,
so the load average is printed with the figures.
"""
from __future__ import annotations

import os

import torch

from ..errors import FERError
from ..evaluation.tta import DEFAULT_VIEWS
from ..inference.faces import FaceDetector, whole_image_face
from ..inference.images import read_image
from ..inference.recognizer import EmotionRecognizer
from ..paths import default_checkpoint
from .sample_faces import photo_jpeg
from .timing import median_ms

BUDGET_MS = 50.0


def _recognizers(checkpoint: str | None, yunet: str | None) -> tuple[dict[str, EmotionRecognizer], str]:
    """The same model run by each engine (ONNX Runtime on as many threads as PyTorch has), by name; PyTorch first."""
    threads = torch.get_num_threads()
    if checkpoint or default_checkpoint().is_file():
        recs = {}
        for engine in ("torch", "onnxruntime", "int8"):
            try:
                rec = EmotionRecognizer.load(checkpoint, yunet_model=yunet, engine=engine, threads=threads)
            except FERError as exc:  # int8 needs the dataset to calibrate on
                print(f"{engine}: not timed ({exc})")
                continue
            recs[{"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "int8": "ONNX Runtime int8"}[engine]] = rec
        return recs, recs["PyTorch"].source
    from ..models.registry import create_model  # timing depends on the architecture only, not on trained weights
    return ({"PyTorch": EmotionRecognizer(create_model("fer_vgg_small"), FaceDetector(yunet))},
            "an untrained fer_vgg_small (no models/default.pt yet; ONNX Runtime not timed)")


def bench_predict(checkpoint: str | None = None, repeats: int = 30, yunet: str | None = None) -> dict:
    """Print and return median milliseconds per stage for the test photo, TTA off and on, per backend."""
    recs, source = _recognizers(checkpoint, yunet)
    rec = recs["PyTorch"]
    jpeg = photo_jpeg()
    rgb = read_image(jpeg)
    faces = rec.detector.detect(rgb)
    print(f"predict bench: {source}; {rec.detector.backend} detector; {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (other processes slow these figures)")
    print(f"test photo: 640x480 JPEG, {len(faces)} face(s) found; medians of {repeats} runs in ms")
    if not faces:
        faces = [whole_image_face(rgb)]
        print("warning: no face found, classification timed on the whole image")
    figures = {"decode": median_ms(lambda: read_image(jpeg), repeats),
               "detect": median_ms(lambda: rec.detector.detect(rgb), repeats)}
    print(f"{'':36}{'decode':>9}{'detect':>9}{'classify':>10}{'sum':>8}{'end to end':>12}")
    for backend, r in recs.items():
        for name, views in (("TTA off", 1), (f"TTA {DEFAULT_VIEWS} views", DEFAULT_VIEWS)):
            classify = median_ms(lambda v=views, r=r: r.classify(rgb, faces, v), repeats)
            total = median_ms(lambda v=views, r=r: r.predict(jpeg, tta=v > 1, views=max(v, 1)), repeats)
            figures[f"{backend}, {name}"] = {"classify": classify, "end_to_end": total}
            parts = figures["decode"] + figures["detect"] + classify
            print(f"{backend + ', ' + name:36}{figures['decode']:9.1f}{figures['detect']:9.1f}{classify:10.1f}"
                  f"{parts:8.1f}{total:12.1f}")
    tta_total = figures[f"PyTorch, TTA {DEFAULT_VIEWS} views"]["end_to_end"]
    live_ms = figures["detect"] + figures["PyTorch, TTA off"]["classify"]
    print(f"budget: {BUDGET_MS:.0f} ms with TTA -> {tta_total:.1f} ms ({'within' if tta_total <= BUDGET_MS else 'OVER'}); "
          f"live frame (detect + classify, no TTA) {live_ms:.1f} ms = {1000 / live_ms:.0f} fps")
    return figures


def run(args) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    bench_predict(args.checkpoint, args.repeats, args.yunet)

"""The check `python -m fer_core export` runs on an export: ONNX Runtime against PyTorch on the same faces."""
from __future__ import annotations

import os

import numpy as np

from ..models.loading import load_model
from ..models.onnx import OnnxModel
from .metrics import predict_images
from .tta import DEFAULT_VIEWS


def verify_export(model_path: str | os.PathLike, onnx_path: str | os.PathLike, images: np.ndarray) -> dict:
    """Largest absolute probability difference and top-1 agreement of ONNX Runtime against PyTorch (fp32)."""
    reference = predict_images(load_model(model_path, "cpu"), images, 1, 256, "cpu", amp=False)
    exported = predict_images(OnnxModel(onnx_path), images, 1, 256, "cpu", amp=False)
    return {"n": int(len(images)), "max_abs_diff": float(np.abs(reference - exported).max()),
            "top1_agreement": float((reference.argmax(1) == exported.argmax(1)).mean())}


INT8_MIN_AGREEMENT = 0.99   # top-1 agreement with PyTorch fp32, plain and with TTA
INT8_MAX_ACCURACY_LOSS = 0.005


def check_int8(model_path: str | os.PathLike, int8_path: str | os.PathLike, split, views: int = DEFAULT_VIEWS) -> dict:
    """The int8 model against PyTorch fp32 on `split` (PrivateTest), without and with `views`-view TTA:
    top-1 agreement and accuracy for each, and whether both stay within the targets."""
    reference_model, int8_model = load_model(model_path, "cpu"), OnnxModel(int8_path)
    modes, problems = {}, []
    for mode, v in (("plain", 1), (f"TTA {views} views", views)):
        reference = predict_images(reference_model, split.images, v, 256, "cpu", amp=False).argmax(1)
        quantized = predict_images(int8_model, split.images, v, 256, "cpu").argmax(1)
        c = {"n": int(len(split.labels)), "top1_agreement": float((reference == quantized).mean()),
             "accuracy": float((quantized == split.labels).mean()),
             "reference_accuracy": float((reference == split.labels).mean())}
        modes[mode] = c
        if c["top1_agreement"] < INT8_MIN_AGREEMENT:
            problems.append(f"{mode}: {c['top1_agreement']:.2%} agreement, below {INT8_MIN_AGREEMENT:.0%}")
        if c["reference_accuracy"] - c["accuracy"] > INT8_MAX_ACCURACY_LOSS:
            problems.append(f"{mode}: accuracy {100 * (c['reference_accuracy'] - c['accuracy']):.2f} points lower")
    return {"modes": modes, "passed": not problems, "problem": "; ".join(problems)}

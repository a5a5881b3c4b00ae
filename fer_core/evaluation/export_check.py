"""The check `python -m fer_core export` runs on an export: ONNX Runtime against PyTorch on the same faces."""
from __future__ import annotations

import os

import numpy as np

from ..models.loading import load_model
from ..models.onnx import OnnxModel
from .metrics import predict_images


def verify_export(model_path: str | os.PathLike, onnx_path: str | os.PathLike, images: np.ndarray) -> dict:
    """Largest absolute probability difference and top-1 agreement of ONNX Runtime against PyTorch (fp32)."""
    reference = predict_images(load_model(model_path, "cpu"), images, 1, 256, "cpu", amp=False)
    exported = predict_images(OnnxModel(onnx_path), images, 1, 256, "cpu", amp=False)
    return {"n": int(len(images)), "max_abs_diff": float(np.abs(reference - exported).max()),
            "top1_agreement": float((reference.argmax(1) == exported.argmax(1)).mean())}

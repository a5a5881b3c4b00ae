"""int8 inference: ONNX Runtime's static quantization of an exported model (QDQ: int8 weights per channel,
uint8 activations), calibrated on a few hundred FER2013 training faces.

    quantize_onnx("default.onnx", "default.int8.onnx", calibration_faces())

The quantized graph takes and returns what the fp32 export does (onnx.py), so `OnnxModel` runs it unchanged;
its metadata says `precision: int8`. Whether it is good enough is measured, not assumed:
evaluation/export_check.py compares it with PyTorch fp32 on PrivateTest, plain and with TTA.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import FERError
from ..paths import atomic_write
from .onnx import INPUT_NAME
from .registry import normalize_images

CALIBRATION_FACES = 300
PRECISION_KEY = "precision"  # the metadata entry OnnxModel reads


def calibration_faces(data: str | os.PathLike | None = None, n: int = CALIBRATION_FACES, seed: int = 0) -> np.ndarray:
    """`n` training faces (uint8, N x 48 x 48), a fixed random pick: never PublicTest or PrivateTest."""
    from ..data.fer2013 import load_dataset
    try:
        train = load_dataset(data)["train"]
    except FERError as exc:
        raise FERError(f"int8 needs FER2013's training faces to calibrate on: {exc}") from None
    pick = np.sort(np.random.default_rng(seed).permutation(len(train))[:n])
    return train.images[pick]


class _Faces:
    """ONNX Runtime's CalibrationDataReader over normalised faces, in batches."""

    def __init__(self, faces: np.ndarray, batch: int = 50):
        x = normalize_images(torch.from_numpy(faces)).unsqueeze(1).numpy()
        self.batches = iter([x[i:i + batch] for i in range(0, len(x), batch)])

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT_NAME: batch}

    def rewind(self) -> None:  # one pass of min-max calibration needs none
        pass


def quantize_onnx(fp32_path: str | os.PathLike, out_path: str | os.PathLike, faces: np.ndarray) -> Path:
    """Write the int8 (QDQ) quantization of the fp32 graph at `fp32_path`, calibrated on uint8 `faces`."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("FacesReader", (_Faces, CalibrationDataReader), {})(faces)
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)  # folds and infers shapes
        quantized = Path(work) / "int8.onnx"
        quantize_static(str(prepared), str(quantized), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
        model = onnx.load(str(quantized))
        onnx.helper.set_model_props(model, {PRECISION_KEY: "int8"})
        with atomic_write(out_path, "writing", suffix=".tmp.onnx") as tmp:
            onnx.save(model, str(tmp))
    return out_path

"""The one loader for every kind of model: a checkpoint (.pt), a saved ensemble (models/<name>.json) or an
ONNX export (.onnx). Each kind's module is imported only when a file of that kind is loaded.

    model = load_model("models/default.pt")          # or .json, or .onnx
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A network ready to predict, in eval mode where it is a PyTorch module."""
    suffix = Path(path).suffix
    if suffix == ".json":
        from .ensemble import load_ensemble
        return load_ensemble(path, device)
    if suffix == ".onnx":
        from .onnx_export import OnnxModel
        return OnnxModel(path)  # onnxruntime on the CPU, whatever `device` says
    from .checkpoints import load_checkpoint, model_from_checkpoint
    return model_from_checkpoint(load_checkpoint(path), device)

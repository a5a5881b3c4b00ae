"""ONNX: export any model this tool loads to one graph, check it against PyTorch, and run it with onnxruntime.

The graph takes `faces`, a float32 (N, 1, 48, 48) batch of grayscale faces scaled to [-1, 1]
(pixel / 127.5 - 1), with N free, and returns `probabilities` (N, 7) in FER2013 order (angry, disgust,
fear, happy, sad, surprise, neutral). An ensemble becomes one graph that averages its members.
`OnnxModel` wraps an onnxruntime session as a module, so evaluation, TTA, Predict and Live use it unchanged.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError, FERError
from ..labels import EMOTIONS
from ..paths import atomic_write, existing_file, is_folder, is_regular_file, shown
from .checkpoints import MAX_CHECKPOINT_BYTES

INPUT_NAME, OUTPUT_NAME = "faces", "probabilities"


class ProbabilityOutput(nn.Module):
    """A model's softmax probabilities in float32: what the exported graph returns."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).float().softmax(dim=-1)


def export_module(model: nn.Module, out_path: str | os.PathLike) -> Path:
    """Write a loaded network (returning logits or log-probabilities) as an ONNX graph of its probabilities."""
    out_path = Path(out_path)
    if out_path.suffix != ".onnx":
        raise FERError(f"{out_path}: the output file should end in .onnx")
    if not is_folder(out_path.parent) or not os.access(out_path.parent, os.W_OK):
        raise FERError(f"cannot write {shown(out_path, 200)}: {shown(out_path.parent, 200)} is not a folder this "
                       f"user can write to")
    if out_path.exists() and not is_regular_file(out_path):
        raise FERError(f"cannot write {shown(out_path, 200)}: something other than a file is there")
    model = ProbabilityOutput(model.float().eval()).eval()
    example = torch.zeros(2, 1, 48, 48)
    with atomic_write(out_path, "exporting to") as tmp, contextlib.redirect_stdout(io.StringIO()):
        # (the exporter narrates its steps on stdout)
        torch.onnx.export(model, (example,), tmp, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False,
                          verbose=False)
    return out_path


class OnnxModel(nn.Module):
    """An exported graph run by onnxruntime, returning log-probabilities like our networks' logits."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort
        self.path = existing_file(path, "ONNX model", MAX_CHECKPOINT_BYTES, CheckpointError)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # no busy-waiting between runs: beside PyTorch's own threads (TTA's views, the detector) a spinning pool
        # took the cores from them (10-view TTA in the photo pipeline: 21.8 ms -> 5.6 ms, int8, 2 cores)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception:  # onnxruntime's own exception types: a damaged file or not ONNX at all
            raise CheckpointError(f"{self.path} is not a readable ONNX model (damaged or not ONNX)") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or list(inputs[0].shape)[1:] != [1, 48, 48]:
            shape = "x".join(str(d) for d in inputs[0].shape) if inputs else "nothing"
            raise CheckpointError(f"{self.path} takes {shape}, not a batch of 1x48x48 faces: it is not an "
                                  f"emotion model exported by this tool")
        if list(outputs[0].shape)[1:] != [len(EMOTIONS)]:
            raise CheckpointError(f"{self.path} does not output {len(EMOTIONS)} emotion probabilities")
        self.input_name = inputs[0].name
        # "int8" for a quantized graph (models/quantize.py writes it), else fp32
        self.precision = self.session.get_modelmeta().custom_metadata_map.get("precision", "fp32")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        faces = np.ascontiguousarray(x.detach().float().cpu().numpy())
        probs = self.session.run(None, {self.input_name: faces})[0]
        return torch.from_numpy(probs).clamp_min(1e-12).log()

"""Post-hoc logit adjustment (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021).

FER2013's training set is imbalanced (happy 25%, disgust 1.5%), and a network trained on it carries that prior
into its decisions: on real photos, where the emotions come about equally often, disgust is read as angry. Adding
-tau * log(prior) to the logits divides the predicted probabilities by prior**tau: tau 0 changes nothing, tau 1
decides as if every emotion were equally likely. The shift is written into the bias of the network's output layer,
so every engine (PyTorch, ONNX, int8), TTA and Live use the adjusted network without knowing about it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import CheckpointError
from ..labels import NUM_CLASSES
from .checkpoints import load_checkpoint, model_from_checkpoint, save_checkpoint

TAUS = (0.0, 0.25, 0.5, 0.75, 1.0)  # the grid `choose_tau` selects from


def prior_shift(counts, tau: float) -> np.ndarray:
    """The logit shift for class counts `counts` (training images per class): -tau * log(prior)."""
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (NUM_CLASSES,) or (counts <= 0).any():
        raise ValueError(f"logit adjustment needs a positive count for each of the {NUM_CLASSES} classes")
    return -tau * np.log(counts / counts.sum())


def adjusted_probabilities(probs: np.ndarray, counts, tau: float) -> np.ndarray:
    """Probabilities (N, 7) as the adjusted network gives them, up to TTA's averaging order."""
    p = np.asarray(probs, dtype=np.float64) * np.exp(prior_shift(counts, tau))
    return p / p.sum(1, keepdims=True)


def choose_tau(probs: np.ndarray, labels: np.ndarray, counts, taus=TAUS) -> tuple[float, dict[float, float]]:
    """The tau of `taus` whose adjusted `probs` are right most often on `labels` (PublicTest: selection never
    looks at PrivateTest), the smallest on a tie, and each tau's accuracy."""
    accuracy = {float(t): float((adjusted_probabilities(probs, counts, t).argmax(1) == labels).mean()) for t in taus}
    best = max(accuracy.values())
    return min(t for t, a in accuracy.items() if a == best), accuracy


def output_bias_name(model: nn.Module) -> str:
    """The state-dict name of the bias of the layer that gives the class logits: the last Linear with one output
    per class."""
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == NUM_CLASSES]
    if not heads or getattr(model.get_submodule(heads[-1]), "bias", None) is None:
        raise CheckpointError("this network has no output layer with a bias to adjust")
    return f"{heads[-1]}.bias"


def write_adjusted(src: str | os.PathLike, dst: str | os.PathLike, counts, tau: float) -> Path:
    """A copy of the checkpoint `src` at `dst` whose output bias carries the shift for `counts` and `tau`, in the
    weights' own precision; the checkpoint records the adjustment."""
    ckpt = load_checkpoint(src)
    if ckpt.get("logit_adjustment"):
        raise CheckpointError(f"{Path(src).name} is already adjusted (tau {ckpt['logit_adjustment'].get('tau')}): "
                              f"adjust the model it was made from")
    key = output_bias_name(model_from_checkpoint(ckpt))
    bias = ckpt["state_dict"][key]
    shift = torch.from_numpy(prior_shift(counts, tau)).float()
    ckpt["state_dict"][key] = (bias.float() + shift).to(bias.dtype)
    ckpt["logit_adjustment"] = {"tau": float(tau), "counts": [int(c) for c in counts]}
    save_checkpoint(dst, ckpt)
    return Path(dst)

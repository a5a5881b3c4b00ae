"""Class balancing: the weights each method uses, and the per-epoch order of training indices.

- "weighted": every image once per epoch; the loss weights class c by n / (K * n_c).
- "oversample": N draws with replacement, each class equally likely (rare images repeat).
- "undersample": min_c n_c images of every class per epoch, a fresh subset each epoch.
"""
from __future__ import annotations

import numpy as np
import torch

BALANCE_METHODS = ("none", "weighted", "oversample", "undersample")


def class_weights(counts, method: str) -> np.ndarray:
    """Per-class factor a method applies: loss weight, mean draws per image, or fraction kept."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    safe = np.where(present, counts, 1)
    if method == "none":
        w = np.ones_like(counts)
    elif method == "weighted":
        w = counts.sum() / (present.sum() * safe)
    elif method == "oversample":
        w = (counts.sum() / present.sum()) / safe
    elif method == "undersample":
        w = counts[present].min() / safe
    else:
        raise ValueError(f"unknown balancing method '{method}': choose one of {', '.join(BALANCE_METHODS)}")
    return np.where(present, w, 0.0)


def epoch_indices(labels: torch.Tensor, method: str, generator: torch.Generator) -> torch.Tensor:
    """Indices into the training set for one epoch, shuffled, on the labels' device."""
    n = labels.numel()
    dev = labels.device
    if method in ("none", "weighted"):
        return torch.randperm(n, generator=generator, device="cpu").to(dev)
    counts = torch.bincount(labels.cpu())
    if method == "oversample":
        per_image = (1.0 / counts.clamp(min=1).double())[labels.cpu()]
        return torch.multinomial(per_image, n, replacement=True, generator=generator).to(dev)
    if method == "undersample":
        k = int(counts[counts > 0].min())
        picks = [idx[torch.randperm(idx.numel(), generator=generator)[:k]]
                 for c in range(counts.numel()) if (idx := (labels.cpu() == c).nonzero().flatten()).numel()]
        chosen = torch.cat(picks)
        return chosen[torch.randperm(chosen.numel(), generator=generator)].to(dev)
    raise ValueError(f"unknown balancing method '{method}': choose one of {', '.join(BALANCE_METHODS)}")

"""Class balancing: the weights each method uses, and the per-epoch order of training indices.

- "weighted": every image once per epoch; the loss weights an image of class c by n / (K * n_c).
- "oversample": N draws with replacement, each class equally likely (rare images repeat).
- "undersample": min_c n_c images of every class per epoch, a fresh subset each epoch.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy where each image counts with its own class's weight, label smoothing included.

    F.cross_entropy(weight=..., label_smoothing=...) also weights the smoothing term by every
    class's weight, so with FER2013's weights (disgust 9.4, happy 0.57) each image is pulled
    towards the rare classes and training collapses onto them. Here the weight belongs to the
    image: w[y] * ((1 - e) * nll + e * mean over classes of -log p), normalised by the sum of w[y].
    """
    if weights is None:
        return F.cross_entropy(logits, target, label_smoothing=label_smoothing)
    log_p = logits.log_softmax(dim=-1)
    per_image = -(1 - label_smoothing) * log_p.gather(1, target[:, None]).squeeze(1) - label_smoothing * log_p.mean(1)
    w = weights[target]
    return (w * per_image).sum() / w.sum()

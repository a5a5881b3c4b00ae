"""The training loss: cross-entropy with label smoothing and class weights, the mixing partner's share, and
the teacher's soft targets when distilling."""
from __future__ import annotations

import numpy as np
import torch

from .balance import class_weights, weighted_cross_entropy
from .batches import Batch
from .config import TrainConfig
from .distill import distillation_loss


class TrainingLoss:
    def __init__(self, cfg: TrainConfig, class_counts: np.ndarray, device: torch.device):
        self.weights = (torch.tensor(class_weights(class_counts, "weighted"), dtype=torch.float32, device=device)
                        if cfg.balance == "weighted" else None)
        self.label_smoothing = cfg.label_smoothing
        # the crowd's vote shares are the whole target (FER+'s cross-entropy training); a teacher's are mixed in
        self.distill_weight = 1.0 if cfg.labels == "ferplus-soft" else cfg.distill_weight

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        logits = logits.float()
        loss = weighted_cross_entropy(logits, batch.labels, self.weights, self.label_smoothing)
        if batch.lam < 1:  # the partner's target in the share of its pixels
            loss = batch.lam * loss + (1 - batch.lam) * weighted_cross_entropy(
                logits, batch.labels[batch.partner], self.weights, self.label_smoothing)
        if batch.soft_targets is not None:
            loss = distillation_loss(logits, batch.soft_targets, loss, self.distill_weight)
        return loss

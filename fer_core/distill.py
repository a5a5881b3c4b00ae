"""Knowledge distillation: a student network learns a teacher's probabilities on the training images.

The teacher (a checkpoint or a saved ensemble, e.g. several runs averaged) is run once before training,
over every training image with mirror TTA, so distillation costs one evaluation pass and then nothing per
step. The student's loss mixes the soft cross-entropy against those probabilities with the usual hard-label
loss: `weight * soft + (1 - weight) * hard`.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .evaluate import predict_images

TEACHER_VIEWS = 2  # the image and its mirror: the student also trains on mirrored images


def teacher_probabilities(teacher: str | os.PathLike, images: np.ndarray, device: torch.device) -> torch.Tensor:
    """(N, 7) float32 probabilities of `teacher` for uint8 48x48 `images`, on `device`."""
    from .loading import load_model
    model = load_model(teacher, device)
    probs = predict_images(model, images, TEACHER_VIEWS, 512, device)
    return torch.from_numpy(probs).float().to(device)


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, hard_loss: torch.Tensor,
                      weight: float) -> torch.Tensor:
    """`weight` x cross-entropy against the teacher's probabilities + (1 - `weight`) x the hard-label loss."""
    soft = -(soft_targets * logits.log_softmax(dim=-1)).sum(dim=1).mean()
    return weight * soft + (1 - weight) * hard_loss

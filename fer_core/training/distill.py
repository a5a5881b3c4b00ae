"""Knowledge distillation: a student network learns a teacher's probabilities on the training images.

The teacher (a checkpoint or a saved ensemble, e.g. several runs averaged) is run once before training,
so distillation costs evaluation passes up front and then nothing per step. Two ways to take its answers:

- clean (the default): the teacher labels each training image and its mirror; the student pairs those
  probabilities with whatever augmented view of the image it draws.
- consistent teaching (`--teacher-views K`): the teacher labels K fixed augmented views of each image, and
  the student trains on exactly those views, so target and input always match (Beyer et al. 2022, "a good
  teacher is patient and consistent"; stored per-view soft labels as in FKD, Shen & Xing 2022).

The student's loss mixes the soft cross-entropy with the usual hard-label loss: `weight * soft + (1 - weight) * hard`.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation.metrics import predict_images
from ..evaluation.tta import predict_proba
from ..models.precision import autocast, memory_format, use_bf16
from ..models.registry import normalize_images
from .augment import AugmentConfig, augment_batch

TEACHER_VIEWS = 2  # clean teaching: the image and its mirror, since the student also trains on mirrored images


@dataclass
class TeacherTargets:
    """The teacher's probabilities: (N, 7) for the clean images, or (K, N, 7) for K stored `views` (K, N, 1, H, W).
    `mirrored`: each view's probabilities were averaged with its mirror's, so they hold for the mirror too."""
    probs: torch.Tensor
    views: torch.Tensor | None = None
    mirrored: bool = False

    def draw(self, idx: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised images, probabilities) of one random stored view of each image in `idx`, or of its mirror."""
        view = torch.randint(len(self.views), (len(idx),), generator=generator).to(idx.device)
        x = self.views[view, idx].float()
        if self.mirrored:
            flip = (torch.rand(len(idx), generator=generator) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x, self.probs[view, idx]


def teacher_targets(teacher: str | os.PathLike, images: np.ndarray, device: torch.device, views: int = 0,
                    augment: AugmentConfig | None = None, seed: int = 0, mirror: bool = False,
                    stop: Callable[[], bool] | None = None) -> TeacherTargets | None:
    """What the student learns from `teacher` on uint8 48x48 `images`: clean probabilities when `views` is 0,
    else the probabilities of `views` augmented copies of each image drawn with `augment` (fixed by `seed`),
    each averaged with its mirror's when `mirror`. None when `stop()` turned true while labelling views."""
    from ..models.loading import load_model
    model = load_model(teacher, device)
    if not views:
        probs = predict_images(model, images, TEACHER_VIEWS, 512, device)
        return TeacherTargets(torch.from_numpy(probs).float().to(device))
    return label_views(model, images, views, augment or AugmentConfig(), seed, device, mirror=mirror, stop=stop)


@torch.no_grad()
def label_views(model: torch.nn.Module, images: np.ndarray, views: int, augment: AugmentConfig, seed: int,
                device: torch.device, batch_size: int = 512, mirror: bool = False,
                stop: Callable[[], bool] | None = None) -> TeacherTargets | None:
    """`views` augmented copies of every image (stored as float16) and the teacher's probabilities for each
    (averaged with the mirror's when `mirror`); None as soon as `stop()` is true."""
    bf16 = use_bf16(device, True)
    model.eval().to(memory_format=memory_format(device))
    generator = torch.Generator(device=device).manual_seed(seed)
    starts = range(0, len(images), batch_size)
    bar = tqdm(total=views * len(starts), desc=f"teacher: labelling {views} views of each image", unit="batch",
               file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30)
    all_views, all_probs = [], []
    for _ in range(views):
        chunks, probs = [], []
        for start in starts:
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device).unsqueeze(1)
            x = augment_batch(normalize_images(x), augment, generator).half()  # what the student will see
            with autocast(device, bf16):
                probs.append(predict_proba(model, x.float(), views=2 if mirror else 1))
            chunks.append(x)
            bar.update()
            if stop is not None and stop():
                bar.close()
                return None
        all_views.append(torch.cat(chunks))
        all_probs.append(torch.cat(probs))
    bar.close()
    return TeacherTargets(torch.stack(all_probs), torch.stack(all_views), mirrored=mirror)


def distillation_loss(logits: torch.Tensor, soft_targets: torch.Tensor, hard_loss: torch.Tensor,
                      weight: float) -> torch.Tensor:
    """`weight` x cross-entropy against the teacher's probabilities + (1 - `weight`) x the hard-label loss."""
    soft = -(soft_targets * logits.log_softmax(dim=-1)).sum(dim=1).mean()
    return weight * soft + (1 - weight) * hard_loss

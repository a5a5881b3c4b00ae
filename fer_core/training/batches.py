"""The training batches of each epoch, made on the training device.

The whole training split lives there as uint8; each batch is indexed, normalised, augmented
(augment.py), taken from the teacher's stored views (distill.py) and mixed (mixing.py) there, so no
host copy happens per batch. An epoch's batches depend only on the seed and the epoch number: a
resumed run replays the same epoch.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..models.precision import memory_format
from ..models.registry import normalize_images
from .augment import augment_batch
from .balance import epoch_indices
from .config import TrainConfig
from .distill import TeacherTargets
from .distributed import Distributed, shard
from .mixing import alternating_flips, mix_batch


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def epoch_order(labels: torch.Tensor, cfg: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """The epoch's shuffled training indices after balancing, cut to --epoch-size when one is set."""
    order = epoch_indices(labels, cfg.balance, generator)
    return order[:cfg.epoch_size] if cfg.epoch_size else order


def auto_batch_size(model: torch.nn.Module, device: torch.device, cap: int = 4096) -> int:
    """Largest power-of-two batch (to `cap`) whose training step fits in GPU memory; 128 on CPU."""
    if device.type != "cuda":
        return 128
    best, size = 64, 64
    params = [p.detach().clone() for p in model.parameters()]
    while size <= cap:
        try:
            x = torch.randn(size, 1, 48, 48, device=device)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                model(x).float().logsumexp(1).mean().backward()
            best, size = size, size * 2
        except torch.OutOfMemoryError:
            break
        finally:
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
    with torch.no_grad():  # the probe only ran backward (no optimizer step), but be certain
        for p, saved in zip(model.parameters(), params):
            p.copy_(saved)
    return best // 2 if best >= 256 else best  # headroom for the optimizer state and fragmentation


@dataclass
class Batch:
    images: torch.Tensor  # (B, 1, H, W) normalised, augmented and mixed, in the device's memory layout
    labels: torch.Tensor
    soft_targets: torch.Tensor | None  # the teacher's probabilities, mixed like the images
    partner: torch.Tensor | None  # each image's mixing partner (mixing.mix_batch)
    lam: float  # the share of each image's own target


class BatchSource:
    """The training split of one process (its shard under torchrun) cut into batches, epoch by epoch."""

    def __init__(self, images, labels, cfg: TrainConfig, batch_size: int, device: torch.device,
                 ddp: Distributed | None = None, teacher: TeacherTargets | None = None):
        self.images = torch.as_tensor(images).unsqueeze(1).to(device)
        self.labels = torch.as_tensor(labels).to(device)
        self.cfg, self.batch_size, self.device = cfg, batch_size, device
        self.ddp = ddp or Distributed()
        self.teacher = teacher
        self.layout = memory_format(device)

    def __len__(self) -> int:
        """Batches per epoch (a last batch of one image is dropped: BatchNorm cannot train on it)."""
        n = len(shard(epoch_order(self.labels, self.cfg, torch.Generator().manual_seed(0)), self.ddp))
        return n // self.batch_size + (1 if n % self.batch_size >= 2 else 0)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        cfg, teacher = self.cfg, self.teacher
        gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch))
        aug_gen = torch.Generator(device=self.device).manual_seed(epoch_seed(cfg.seed, epoch))
        order = shard(epoch_order(self.labels, cfg, gen), self.ddp)
        aug = cfg.augment()
        flips = (alternating_flips(len(self.images), epoch, cfg.seed).to(self.device)
                 if cfg.alternating_flip else None)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            if teacher is not None and teacher.views is not None:  # consistent teaching: the views it labelled
                x, soft = teacher.draw(idx, gen)
            else:
                x = augment_batch(normalize_images(self.images[idx]), aug, aug_gen,
                                  None if flips is None else flips[idx])
                soft = None if teacher is None else teacher.probs[idx]
            x, partner, lam = mix_batch(x, cfg.mix, cfg.mix_alpha, gen)
            if soft is not None and lam < 1:
                soft = lam * soft + (1 - lam) * soft[partner]
            yield Batch(x.contiguous(memory_format=self.layout), self.labels[idx], soft, partner, lam)


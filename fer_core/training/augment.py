"""Training augmentation as batched tensor ops on the training device (no per-image Python loop).

Rotation, zoom and shift are one random affine transform per image, applied to the whole batch
by a single `grid_sample`; flip and random erasing are masks over the batch; a random crop is one
gather of a window per image. Degradation (`degrade`) makes faces look like the ones real photos give: small,
soft, dim or flat, noisy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: bool = True        # horizontal flip with probability 0.5
    rotate: float = 10.0     # max rotation, degrees
    zoom: float = 0.1        # scale drawn from [1 - zoom, 1 + zoom]
    shift: float = 0.1       # max translation, fraction of the image side
    erase: float = 0.0       # probability of erasing one random rectangle (random erasing)
    crop: int | None = None  # train on a random crop x crop window of each image (None: the whole image)
    degrade: float = 0.0     # probability of real-photo degradation (degrade())

    def to_dict(self) -> dict:
        return asdict(self)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None,
                  flips: torch.Tensor | None = None) -> torch.Tensor:
    """Augment a (B, C, H, W) float batch; returns a new tensor on the same device.

    `flips` (B,) bool chooses the mirrored images (alternating flip) instead of a coin per image."""
    b = x.shape[0]
    dev = x.device
    rand = lambda *shape: torch.rand(*shape, device=dev, generator=generator)  # noqa: E731
    if cfg.rotate or cfg.zoom or cfg.shift:
        angle = (rand(b) * 2 - 1) * math.radians(cfg.rotate)
        scale = 1 + (rand(b) * 2 - 1) * cfg.zoom
        tx, ty = ((rand(2, b) * 2 - 1) * cfg.shift * 2)  # affine_grid coordinates span [-1, 1]
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.flip:
        flip = rand(b) < 0.5 if flips is None else flips.to(dev)
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    if cfg.crop:
        x = random_crop(x, cfg.crop, rand)
    if cfg.erase > 0:
        x = random_erase(x, cfg.erase, rand)
    if cfg.degrade > 0:
        x = degrade(x, cfg.degrade, generator)
    return x


DEGRADE_SIDES = (16, 20, 24, 32, 40)  # a face this many pixels wide, brought back to the input's size


def degrade(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Degrade a fraction p of the images as real photos do; each degradation is drawn with probability 1/2.

    - resolution: shrunk to one of DEGRADE_SIDES (with antialiasing) and enlarged back, a small or soft face;
    - light: contrast x[0.4, 1.2], brightness [-0.25, +0.15] and gamma [0.6, 1.6] of the [0, 1] image;
    - noise: Gaussian, sigma up to 0.04 of the range.
    FER2013's faces are sharp and well lit more often than a webcam's or a phone's: a network that never saw
    softness reads a blurred face as angry (the default, cfee's faces blurred by sigma 1: 67.9% -> 42.3%)."""
    b, _, h, w = x.shape
    rand = lambda n: torch.rand(n, device=x.device, generator=generator)  # noqa: E731
    chosen = rand(b) < p
    soft = chosen & (rand(b) < 0.5)
    side = (rand(b) * len(DEGRADE_SIDES)).long()
    x = x.clone()
    for i, s in enumerate(DEGRADE_SIDES):
        picked = (soft & (side == i)).nonzero().flatten()
        if len(picked) and s < min(h, w):
            small = F.interpolate(x[picked], size=(s, s), mode="bilinear", antialias=True, align_corners=False)
            x[picked] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    u = (x + 1) / 2
    lit = (chosen & (rand(b) < 0.5)).view(b, 1, 1, 1)
    mean = u.mean(dim=(1, 2, 3), keepdim=True)
    contrast = (0.4 + rand(b) * 0.8).view(b, 1, 1, 1)
    brightness = (rand(b) * 0.4 - 0.25).view(b, 1, 1, 1)
    gamma = torch.exp(math.log(0.6) + rand(b) * (math.log(1.6) - math.log(0.6))).view(b, 1, 1, 1)
    relit = (((u - mean) * contrast + mean + brightness).clamp(0, 1) ** gamma)
    u = torch.where(lit, relit, u)
    noisy = (chosen & (rand(b) < 0.5)).view(b, 1, 1, 1)
    sigma = (rand(b) * 0.04).view(b, 1, 1, 1)
    noise = torch.randn(u.shape, device=u.device, dtype=u.dtype, generator=generator) * sigma
    u = torch.where(noisy, u + noise, u)
    return u.clamp(0, 1) * 2 - 1


def random_crop(x: torch.Tensor, side: int, rand) -> torch.Tensor:
    """A random side x side window of each image, at a whole-pixel offset."""
    b, c, h, w = x.shape
    top = (rand(b) * (h - side + 1)).long().clamp_max(h - side)
    left = (rand(b) * (w - side + 1)).long().clamp_max(w - side)
    window = torch.arange(side, device=x.device)
    rows = (top.view(b, 1) + window).view(b, 1, side, 1).expand(b, c, side, w)
    x = x.gather(2, rows)
    cols = (left.view(b, 1) + window).view(b, 1, 1, side).expand(b, c, side, side)
    return x.gather(3, cols)


def random_erase(x: torch.Tensor, p: float, rand) -> torch.Tensor:
    """Blank one rectangle (2%-25% of the area, aspect 0.3-3.3) in a fraction p of the images."""
    b, _, h, w = x.shape
    area = (0.02 + rand(b) * 0.23) * h * w
    aspect = torch.exp(math.log(0.3) + rand(b) * (math.log(3.3) - math.log(0.3)))
    eh = (area * aspect).sqrt().clamp(1, h)
    ew = (area / aspect).sqrt().clamp(1, w)
    top = rand(b) * (h - eh)
    left = rand(b) * (w - ew)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
              & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)))
    inside &= (rand(b) < p).view(b, 1, 1)
    return x.masked_fill(inside.unsqueeze(1), 0.0)

"""Mixup and CutMix: each training image is blended with (mixup) or patched from (CutMix) another image of
the batch, and the loss mixes the two images' targets in the same proportion.

    x, partner, lam = mix_batch(x, "cutmix", 1.0, generator)
    loss = lam * loss_fn(logits, y) + (1 - lam) * loss_fn(logits, y[partner])
"""
from __future__ import annotations

import torch

MIX_METHODS = ("none", "mixup", "cutmix")


def mix_batch(x: torch.Tensor, method: str, alpha: float,
              generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, float]:
    """(mixed batch, each image's partner index, lam): the share of each image's own target in its loss.
    Without mixing: (x, None, 1.0)."""
    if method == "none":
        return x, None, 1.0
    b, _, h, w = x.shape
    partner = torch.randperm(b, generator=generator).to(x.device)
    # Beta(alpha, alpha) from two Gamma draws, on the seeded CPU generator
    g = torch._standard_gamma(torch.full((2,), float(alpha)))
    lam = float(g[0] / g.sum()) if float(g.sum()) > 0 else 1.0
    if method == "mixup":
        return lam * x + (1 - lam) * x[partner], partner, lam
    if method != "cutmix":
        raise ValueError(f"mix must be one of {', '.join(MIX_METHODS)}")
    cut_h, cut_w = round(h * (1 - lam) ** 0.5), round(w * (1 - lam) ** 0.5)
    cy, cx = (int(torch.randint(n, (1,), generator=generator)) for n in (h, w))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    mixed = x.clone()
    mixed[:, :, top:bottom, left:right] = x[partner][:, :, top:bottom, left:right]
    return mixed, partner, 1 - (bottom - top) * (right - left) / (h * w)  # the patch as it was clipped


def alternating_flips(n_images: int, epoch: int, seed: int) -> torch.Tensor:
    """(n_images,) bool: which images to mirror this epoch. A random half in the first epoch, then each image
    the opposite of the epoch before (airbench's alternating flip): every image is seen both ways in turn."""
    first = torch.rand(n_images, generator=torch.Generator().manual_seed(seed)) < 0.5
    return first ^ bool((epoch - 1) % 2)

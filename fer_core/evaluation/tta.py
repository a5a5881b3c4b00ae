"""Test-time augmentation: a batch becomes V views, scored in one forward pass, softmax averaged.

Views, in order: the image, its mirror, then shifted crops (and their mirrors) at growing
offsets, so any `views` count gives the most useful views first.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

MAX_SHIFT = 2  # pixels
_SHIFTS = [(0, 0)] + [(dx * s, dy * s) for s in range(1, MAX_SHIFT + 1)
                      for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
VIEW_PLAN: list[tuple[bool, int, int]] = [(flip, dx, dy) for dx, dy in _SHIFTS for flip in (False, True)]
MAX_VIEWS = len(VIEW_PLAN)
DEFAULT_VIEWS = 10


def views_arg(text: str) -> int:
    """argparse type of every --tta-views: an integer from 1 (no TTA) to MAX_VIEWS."""
    import argparse
    try:
        views = int(text)
    except ValueError:
        views = 0
    if not 1 <= views <= MAX_VIEWS:
        raise argparse.ArgumentTypeError(f"expected a number of TTA views from 1 to {MAX_VIEWS}, got '{text}'")
    return views


def make_views(x: torch.Tensor, views: int) -> torch.Tensor:
    """(B, C, H, W) -> (V*B, C, H, W): view-major, so view v of image i is row v*B + i."""
    if not 1 <= views <= MAX_VIEWS:
        raise ValueError(f"TTA views must be between 1 and {MAX_VIEWS}, got {views}")
    h, w = x.shape[-2:]
    padded = F.pad(x, (MAX_SHIFT,) * 4, mode="replicate")
    out = []
    for flip, dx, dy in VIEW_PLAN[:views]:
        v = padded[..., MAX_SHIFT + dy:MAX_SHIFT + dy + h, MAX_SHIFT + dx:MAX_SHIFT + dx + w]
        out.append(v.flip(-1) if flip else v)
    return torch.cat(out)


@torch.no_grad()
def predict_proba(model: torch.nn.Module, x: torch.Tensor, views: int = 1) -> torch.Tensor:
    """Class probabilities (B, K) for a normalised batch, averaged over `views` TTA views."""
    b = x.shape[0]
    logits = model(make_views(x, views) if views > 1 else x)
    probs = logits.float().softmax(dim=-1)
    return probs.view(views, b, -1).mean(0)

"""Checkpoint files: one dict of plain types and tensors, written atomically, read with weights_only.

Keys: format, arch, model_config, labels, state_dict, epoch, val_accuracy, train_config; a
resumable checkpoint (last.pt) adds optimizer, scheduler and the early-stopping state.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..labels import EMOTIONS
from ..paths import atomic_write, existing_file
from .registry import create_model

FORMAT = "fer_core.checkpoint/1"
MAX_CHECKPOINT_BYTES = 2 * 2**30  # our largest network (vgg16, with its optimizer state) is far below


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    with atomic_write(path) as tmp:  # readers never see a half-written file
        torch.save({"format": FORMAT, **payload}, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    path = existing_file(path, "checkpoint", MAX_CHECKPOINT_BYTES, CheckpointError)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "unsupported global" not in str(exc).lower():
            raise CheckpointError(f"{path} is not a readable checkpoint: the file is damaged or is not a PyTorch "
                                  f"file. Use a run's best.pt or a shipped models/*.pt") from None
        # a PyTorch file holding code or objects beyond tensors: never run it
        raise CheckpointError(f"{path} is not a checkpoint this tool can load safely: it holds Python objects "
                              f"besides weights. Use a checkpoint written by fer_core (a run's best.pt or "
                              f"a shipped models/*.pt)") from None
    except Exception:  # zip, pickle and storage errors of a damaged or foreign file: all one message
        raise CheckpointError(f"{path} is not a readable checkpoint: the file is damaged or is not a PyTorch "
                              f"file. Use a run's best.pt or a shipped models/*.pt") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fer_core checkpoint")
    if list(ckpt.get("labels", [])) != list(EMOTIONS):
        raise CheckpointError(f"{path} was trained on other labels: {ckpt.get('labels')}")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> nn.Module:
    """The checkpoint's network in float32 eval mode on `device`."""
    try:
        model = create_model(ckpt["arch"], **ckpt.get("model_config", {}))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint does not match architecture '{ckpt.get('arch')}' "
                              f"({type(exc).__name__}): it is damaged or was written by another version") from None
    return model.to(device).eval()


def starting_weights(path: str | os.PathLike, arch: str, crop: int | None = None) -> dict:
    """The float32 weights of the checkpoint at `path`, for a network of `arch` (and `crop`) to start from
    (`train --init`). Raises CheckpointError when the file is not such a checkpoint."""
    ckpt = load_checkpoint(path)
    theirs = (ckpt.get("arch"), (ckpt.get("model_config") or {}).get("crop"))
    if theirs != (arch, crop):
        crop_text = lambda side: f" with --crop {side}" if side else ""  # noqa: E731
        raise CheckpointError(f"{path} was trained as --arch {theirs[0]}{crop_text(theirs[1])}: it cannot start "
                              f"--arch {arch}{crop_text(crop)}")
    return model_from_checkpoint(ckpt).state_dict()


def export_half(src: str | os.PathLike, dst: str | os.PathLike, **extra) -> Path:
    """A small shippable copy of a checkpoint: weights in float16, no optimizer state."""
    ckpt = load_checkpoint(src)
    keep = {k: ckpt[k] for k in ("arch", "model_config", "labels", "epoch", "val_accuracy", "train_config") if k in ckpt}
    keep["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()}
    save_checkpoint(dst, {**keep, **extra})
    return Path(dst)

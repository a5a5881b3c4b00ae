"""Which device a job runs on, and its name in figures."""
from __future__ import annotations

import torch

from ..errors import FERError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FERError("--device cuda was asked for, but PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"

"""Which device a job runs on, and its name in figures: the one place that decides between the CPU and a GPU."""
from __future__ import annotations

import torch

from ..errors import FERError


def is_device_name(name: str) -> bool:
    """What --device accepts: auto, cpu, cuda or cuda:N."""
    return name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit())


def available_devices() -> list[str]:
    """The device names worth offering here: auto and cpu, and cuda where PyTorch sees a GPU."""
    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def uses_cuda(name: str) -> bool:
    """True when a job asking for `name` runs on a GPU here (the registry queues it on the GPU slot)."""
    return name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if uses_cuda(name) else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FERError("--device cuda was asked for, but PyTorch sees no CUDA GPU here (use --device cpu or auto)")
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"

"""How fast training runs here: a short measured probe of the training step a config runs (batched
augmentation, forward, backward, SGD) on this machine, and the time the config's budget will take from it.

The Train page shows the estimate before Start, and `bench` prints the step's images/s per architecture: a
figure measured where it will run, not one read from a table written on another CPU.
"""
from __future__ import annotations

import os
import threading

import torch
import torch.nn.functional as F

from ..models.devices import device_name, resolve_device
from ..models.precision import autocast, memory_format, precision_name, use_bf16
from ..models.registry import create_model, normalize_images
from .augment import AugmentConfig, augment_batch
from .config import TrainConfig

FER2013_TRAINING_IMAGES = 28_709


def train_images_per_s(arch: str, device: torch.device, batch_size: int, seconds: float, bf16: bool,
                       crop: int | None = None, augment: AugmentConfig | None = None,
                       layout: torch.memory_format | None = None) -> tuple[float, int, torch.nn.Module]:
    """Training images/s of one architecture, timed for `seconds` after a warm-up step; (rate, steps, model).
    `layout`: the memory layout to time (default: the one training uses on `device`)."""
    import time
    torch.manual_seed(0)
    layout = layout or memory_format(device)
    model = create_model(arch, crop=crop).to(device).train().to(memory_format=layout)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.randint(0, 256, (batch_size * 4, 1, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch_size * 4,), device=device)
    aug = augment or AugmentConfig(erase=0.25)

    def step(i: int) -> None:
        i %= 4
        x = augment_batch(normalize_images(images[i * batch_size:(i + 1) * batch_size]), aug)
        x = x.contiguous(memory_format=layout)
        with autocast(device, bf16):
            loss = F.cross_entropy(model(x).float(), labels[i * batch_size:(i + 1) * batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    step(0)  # warm-up: allocations, oneDNN's kernel choice
    steps, start = 0, time.perf_counter()
    while steps < 2 or time.perf_counter() - start < seconds:
        step(steps + 1)
        steps += 1
    return batch_size * steps / (time.perf_counter() - start), steps, model


_THREADS = threading.Lock()  # the thread count is the process's: one estimate at a time sets and restores it


def training_threads() -> int:
    """The threads a training job's PyTorch uses: its own process, where nothing lowers them ($OMP_NUM_THREADS,
    else every core)."""
    first = (os.environ.get("OMP_NUM_THREADS") or "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else os.cpu_count() or 1


def expected_training(cfg: TrainConfig, train_images: int = FER2013_TRAINING_IMAGES, seconds: float = 3.0) -> dict:
    """What `cfg`'s budget costs on this machine: the probe's images/s and the minutes of training steps it
    means (PublicTest's evaluation after each epoch, a teacher's labelling and the final evaluation come on
    top: they are not training steps)."""
    device = resolve_device(cfg.device)
    bf16 = use_bf16(device, cfg.amp)
    batch = 128 if cfg.batch_size == "auto" else int(cfg.batch_size)
    with _THREADS:
        caller_threads = torch.get_num_threads()  # the dashboard keeps fewer for itself; a training job has them all
        torch.set_num_threads(training_threads())
        try:
            speed, _, _ = train_images_per_s(cfg.arch, device, batch, seconds, bf16, cfg.crop, cfg.augment())
            where = device_name(device)
        finally:
            torch.set_num_threads(caller_threads)
    per_epoch = min(cfg.epoch_size or train_images, train_images)
    return {"images_per_s": speed, "epoch_s": per_epoch / speed, "training_s": cfg.epochs * per_epoch / speed,
            "device": where, "precision": precision_name(bf16), "batch_size": batch}

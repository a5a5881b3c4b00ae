"""`python -m fer_core bench`: speed figures, printed, never asserted.

Measures the first decode of the dataset, a cached load, training images/s per architecture
(forward, backward and optimizer step with batched augmentation, on the chosen device),
evaluation images/s with and without TTA, and one photo end to end (bench_predict.py).
"""
from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from .augment import AugmentConfig, augment_batch
from .data import load_dataset
from .evaluate import predict_images
from .models import count_parameters, create_model, normalize_images
from .train import resolve_device
from .tta import DEFAULT_VIEWS


def _timed(fn, seconds: float, min_runs: int = 2) -> tuple[float, int]:
    """Mean seconds per call of fn over at least `min_runs` calls or `seconds`, after one warm-up."""
    fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs, runs


def bench_data(data) -> None:
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        ds = load_dataset(data, cache_dir=cache)
        first = time.perf_counter() - start
        start = time.perf_counter()
        load_dataset(data, cache_dir=cache)
        cached = time.perf_counter() - start
    print(f"data     {len(ds):,} images from {ds.source}: first decode {first:.2f} s, cached load {cached:.2f} s")


def bench_train(arch: str, device: torch.device, batch_size: int, seconds: float) -> None:
    model = create_model(arch).to(device).train()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.randint(0, 256, (batch_size * 4, 1, 48, 48), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 7, (batch_size * 4,), device=device)
    aug = AugmentConfig(erase=0.25)
    step_no = [0]

    def step():
        i = step_no[0] % 4
        step_no[0] += 1
        x = augment_batch(normalize_images(images[i * batch_size:(i + 1) * batch_size]), aug)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(x).float(), labels[i * batch_size:(i + 1) * batch_size])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    per_step, runs = _timed(step, seconds)
    print(f"train    {arch:14} {count_parameters(model) / 1e6:6.2f}M params  batch {batch_size}: "
          f"{batch_size / per_step:8.0f} images/s  ({runs} steps)")


def bench_eval(arch: str, device: torch.device, seconds: float, n_images: int = 512) -> None:
    model = create_model(arch).to(device).eval()
    images = np.random.default_rng(0).integers(0, 256, (n_images, 48, 48), dtype=np.uint8)
    for views in (1, DEFAULT_VIEWS):
        per_call, _ = _timed(lambda v=views: predict_images(model, images, v, 512, device), seconds / 2)
        label = "TTA off" if views == 1 else f"TTA {views} views"
        print(f"evaluate {arch:14} {label:13}: {len(images) / per_call:8.0f} images/s")


def run_benchmarks(args) -> None:
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    if args.data is not None or _default_data_exists():
        bench_data(args.data)
    else:
        print("data     skipped: no dataset found (pass --data or set FER_DATA)")
    for arch in args.arch:
        bench_train(arch, device, args.batch_size, args.seconds)
        bench_eval(arch, device, args.seconds, n_images=4 * args.batch_size)
    if not args.no_predict:
        from .bench_predict import bench_predict
        bench_predict()


def _default_data_exists() -> bool:
    from .data import resolve_data_path
    from .errors import DataError
    try:
        resolve_data_path(None)
        return True
    except DataError:
        return False

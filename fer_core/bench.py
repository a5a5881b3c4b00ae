"""`python -m fer_core bench`: speed figures, printed, never asserted.

Measures the first decode of the dataset, a cached load, training images/s per architecture
(forward, backward and optimizer step with batched augmentation, on the chosen device) with the
utilisation it means, evaluation images/s with and without TTA, one photo end to end
(bench_predict.py) and, on request, the training time a real run needs to reach a PrivateTest
accuracy.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

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


# Dense bf16 tensor-core peaks from NVIDIA's datasheets, TFLOP/s without sparsity; the first match wins.
DATASHEET_BF16_TFLOPS = [("H200", 989.4), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.4), ("A100", 312.0)]


def training_flops_per_image(model: torch.nn.Module, device: torch.device) -> float:
    """FLOPs of one training step per image: the counted forward pass, times 3 for the backward."""
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(2, 1, 48, 48, device=device)
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    model.train(was_training)
    return 3 * counter.get_total_flops() / 2


def peak_tflops(device: torch.device) -> tuple[float, str]:
    """(TFLOP/s, where the figure comes from): the datasheet bf16 peak of a known GPU, else a measured
    large matmul (bf16 on a GPU, fp32 on a CPU), which is what the hardware reaches in practice."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in DATASHEET_BF16_TFLOPS:
            if key in name:
                return tflops, f"{key} datasheet bf16 dense peak"
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (2048, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)

    def matmul():
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
    per_call, _ = _timed(matmul, 1.0)
    return 2 * n ** 3 / per_call / 1e12, f"measured {str(dtype).removeprefix('torch.')} matmul peak"


def bench_train(arch: str, device: torch.device, batch_size: int, seconds: float, peak=None) -> None:
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
    images_per_s = batch_size / per_step
    flops = training_flops_per_image(model, device)
    line = (f"train    {arch:14} {count_parameters(model) / 1e6:6.2f}M params  batch {batch_size}: "
            f"{images_per_s:8.0f} images/s  ({runs} steps), {flops / 1e9:.2f} GFLOP per image")
    if peak:
        line += f", utilisation {100 * flops * images_per_s / (peak[0] * 1e12):.1f}% of {peak[0]:.3g} TFLOP/s ({peak[1]})"
    print(line)


def bench_time_to_accuracy(arch: str, target: float, args, device: torch.device) -> None:
    """Train a real run, PrivateTest measured after every epoch, and report when it first reaches `target`."""
    from .run_folder import read_metrics
    from .train import TrainConfig
    from .train import main as train
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(arch=arch, data=args.data, out=out, epochs=args.epochs, epoch_size=args.epoch_size,
                          batch_size=args.batch_size, device=str(device), track_test=True,
                          stop_at_test_accuracy=target, tta_views=1, compile=args.compile)
        curve = read_metrics(Path(train(cfg)) / "metrics.jsonl")
    training_s = sum(m["seconds"] for m in curve)
    last = curve[-1] if curve else {"test_accuracy": 0.0}
    if last["test_accuracy"] >= target:  # the run stops at the first epoch that reaches it
        print(f"accuracy {arch:14} reached {target:.0%} PrivateTest ({last['test_accuracy']:.2%}) after epoch "
              f"{last['epoch']}: {training_s:.0f} s of training ({last['images_per_s']:.0f} images/s)")
        return
    best = max((m["test_accuracy"] for m in curve), default=0.0)
    print(f"accuracy {arch:14} did not reach {target:.0%} PrivateTest in {len(curve)} epochs "
          f"({training_s:.0f} s of training; best {best:.2%})")


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
    peak = peak_tflops(device)
    print(f"peak     {peak[0]:.3g} TFLOP/s ({peak[1]})")
    for arch in args.arch:
        bench_train(arch, device, args.batch_size, args.seconds, peak)
        if not args.no_eval:
            bench_eval(arch, device, args.seconds, n_images=4 * args.batch_size)
    for arch in args.arch if args.time_to_accuracy is not None else []:
        bench_time_to_accuracy(arch, args.time_to_accuracy, args, device)
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

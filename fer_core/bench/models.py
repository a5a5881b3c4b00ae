"""`python -m fer_core bench`: the models' speed figures.

Measures the first decode of the dataset, a cached load, training images/s per architecture
(forward, backward and optimizer step with batched augmentation, on the chosen device) with the
utilisation it means, evaluation images/s with and without TTA, one photo end to end
(bench/predict.py) and, on request, the training time a real run needs to reach a PrivateTest
accuracy.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..data.fer2013 import load_dataset
from ..evaluation.metrics import predict_images
from ..evaluation.tta import DEFAULT_VIEWS
from ..models.devices import resolve_device
from ..models.precision import autocast, bf16_supported, precision_name
from ..models.registry import count_parameters, create_model
from ..rundir.folder import RunFolder
from ..training.probe import train_images_per_s
from .timing import timed


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
    large matmul in the fastest precision the device runs natively (bf16 on a GPU or an AVX512-BF16 CPU,
    else fp32), which is what the hardware reaches in practice."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in DATASHEET_BF16_TFLOPS:
            if key in name:
                return tflops, f"{key} datasheet bf16 dense peak"
    n = 8192 if device.type == "cuda" else 2048
    dtype = torch.bfloat16 if bf16_supported(device) else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)

    def matmul():
        a @ a
        if device.type == "cuda":
            torch.cuda.synchronize()
    per_call, _ = timed(matmul, 1.0)
    return 2 * n ** 3 / per_call / 1e12, f"measured {str(dtype).removeprefix('torch.')} matmul peak"


def _precisions(device: torch.device) -> list[bool]:
    """The precisions to compare on `device`: fp32, and bf16 where the device runs it natively."""
    return [False, True] if bf16_supported(device) else [False]


def bench_train(arch: str, device: torch.device, batch_size: int, seconds: float, peak=None) -> None:
    """fp32 and bf16 training images/s side by side, in this one process on this device, with the ratio."""
    speeds = {}
    for bf16 in _precisions(device):
        speeds[precision_name(bf16)], runs, model = train_images_per_s(arch, device, batch_size, seconds, bf16)
    flops = training_flops_per_image(model, device)
    figures = "  ".join(f"{name} {v:6.0f} images/s" for name, v in speeds.items())
    if len(speeds) == 2:
        figures += f"  (bf16/fp32 {speeds['bf16'] / speeds['fp32']:.2f}x)"
    line = (f"train    {arch:14} {count_parameters(model) / 1e6:6.2f}M params  batch {batch_size}: {figures}, "
            f"{flops / 1e9:.2f} GFLOP per image")
    if peak:
        best = max(speeds.values())
        line += f", utilisation {100 * flops * best / (peak[0] * 1e12):.1f}% of {peak[0]:.3g} TFLOP/s ({peak[1]})"
    print(line)


def bench_inference(arch: str, device: torch.device, seconds: float, batches=(1, 8, 16, 32, 64, 256)) -> None:
    """Forward-pass time per batch size in PyTorch fp32 and bf16 and, on a CPU, ONNX Runtime: where bf16
    pays and which engine is fastest."""
    # channels_last in both precisions: EmotionRecognizer's layout (faster at every batch size here)
    model = create_model(arch).to(device).eval().to(memory_format=torch.channels_last)
    engines = {precision_name(bf16): (model, bf16) for bf16 in _precisions(device)}
    with tempfile.TemporaryDirectory() as folder:
        if device.type == "cpu":
            from ..models.onnx import OnnxModel, export_module
            engines["onnxruntime"] = (OnnxModel(export_module(create_model(arch).eval(), Path(folder) / "m.onnx")),
                                      False)
        for batch in batches:
            x = torch.randn(batch, 1, 48, 48, device=device).contiguous(memory_format=torch.channels_last)
            times = {}
            for name, (net, bf16) in engines.items():
                def forward(net=net, bf16=bf16, x=x):
                    with torch.no_grad(), autocast(device, bf16):
                        net(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                times[name], _ = timed(forward, seconds / len(batches) / len(engines), min_runs=5)
            figures = "  ".join(f"{n} {1000 * t / batch:7.3f} ms/face {batch / t:7.0f} faces/s"
                                for n, t in times.items())
            ratio = f"  (bf16/fp32 speed {times['fp32'] / times['bf16']:.2f}x)" if "bf16" in times else ""
            print(f"infer    {arch:14} batch {batch:4d}: {figures}{ratio}")


def bench_time_to_accuracy(arch: str, targets: list[float], args, device: torch.device) -> None:
    """Train a real run, PrivateTest measured after every epoch, and report when it first reaches each target."""
    from ..training.config import TrainConfig
    from ..training.train import main as train
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(arch=arch, data=args.data, out=out, epochs=args.epochs, epoch_size=args.epoch_size,
                          batch_size=args.batch_size, device=str(device), track_test=True,
                          stop_at_test_accuracy=max(targets), tta_views=1, compile=args.compile)
        curve, _ = RunFolder(train(cfg)).metrics(writing=False)
    print_time_to_accuracy(arch, targets, curve)


def print_time_to_accuracy(name: str, targets: list[float], curve: list[dict]) -> None:
    """For each target: the training seconds (evaluation excluded) until PrivateTest first reached it,
    plain and, where the run logged it (`--track-test-views`), with TTA."""
    if not any(m.get("test_accuracy") is not None for m in curve):
        print(f"accuracy {name:14} has no PrivateTest accuracy per epoch (train with --track-test)")
        return
    measures = [("test_accuracy", "PrivateTest")]
    views = next((m["test_tta_views"] for m in curve if m.get("test_tta_views")), None)
    if views:
        measures.append(("test_tta_accuracy", f"PrivateTest with {views}-view TTA"))
    for key, what in measures:
        best = max(m.get(key, -1) for m in curve)
        for target in sorted(targets):
            elapsed = 0.0
            for m in curve:
                elapsed += m["seconds"]
                if m.get(key, -1) >= target:
                    print(f"accuracy {name:14} reached {target:.0%} {what} ({m[key]:.2%}) after epoch "
                          f"{m['epoch']}: {elapsed:.0f} s of training ({m['images_per_s']:.0f} images/s, "
                          f"{m.get('precision', 'fp32')})")
                    break
            else:
                print(f"accuracy {name:14} did not reach {target:.0%} {what} in {len(curve)} epochs "
                      f"({elapsed:.0f} s of training; best {best:.2%})")


def bench_eval(arch: str, device: torch.device, seconds: float, n_images: int = 512) -> None:
    model = create_model(arch).to(device).eval()
    images = np.random.default_rng(0).integers(0, 256, (n_images, 48, 48), dtype=np.uint8)
    for views in (1, DEFAULT_VIEWS):
        per_call, _ = timed(lambda v=views: predict_images(model, images, v, 512, device), seconds / 2)
        label = "TTA off" if views == 1 else f"TTA {views} views"
        print(f"evaluate {arch:14} {label:13}: {len(images) / per_call:8.0f} images/s")


def bench_agreement(data, device: torch.device, views: int = DEFAULT_VIEWS) -> None:
    """Top-1 agreement of bf16 and fp32 inference of the default model on PrivateTest, plain and with TTA."""
    from ..models.loading import load_model
    from ..paths import default_checkpoint
    if not bf16_supported(device) or not default_checkpoint().is_file():
        print("agree    skipped: " + ("no default model" if bf16_supported(device) else "no native bf16 here"))
        return
    model = load_model(default_checkpoint(), device)
    test = load_dataset(data)["test"]
    for n_views in (1, views):
        fp32, bf16 = (predict_images(model, test.images, n_views, 512, device, amp=amp).argmax(1) for amp in (False, True))
        label = "TTA off" if n_views == 1 else f"TTA {n_views} views"
        print(f"agree    default model, PrivateTest ({len(test):,} images), {label}: bf16 and fp32 top-1 agree on "
              f"{(fp32 == bf16).mean():.2%}; accuracy fp32 {(fp32 == test.labels).mean():.2%}, "
              f"bf16 {(bf16 == test.labels).mean():.2%}")


def run_benchmarks(args) -> None:
    if args.from_run:  # figures of a finished run: nothing is trained or timed
        run = RunFolder(args.from_run)
        print_time_to_accuracy(run.name, args.time_to_accuracy or [0.68, 0.70], run.metrics(writing=False)[0])
        return
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
            bench_inference(arch, device, args.seconds)
            bench_eval(arch, device, args.seconds, n_images=4 * args.batch_size)
    if not args.no_eval and (args.data is not None or _default_data_exists()):
        bench_agreement(args.data, device)
    for arch in args.arch if args.time_to_accuracy and not args.from_run else []:
        bench_time_to_accuracy(arch, args.time_to_accuracy, args, device)
    if not args.no_predict:
        from .predict import bench_predict
        bench_predict()


def _default_data_exists() -> bool:
    from ..data.sources import resolve_data_path
    from ..errors import DataError
    try:
        resolve_data_path(None)
        return True
    except DataError:
        return False

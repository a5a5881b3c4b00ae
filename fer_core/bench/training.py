"""What speeds up training on this CPU: the training step of one architecture timed with each option that may
help (memory layout, batch size, crops, threads), in one run, against the default.

    python -m fer_core bench training [--arch fer_vgg_small] [--seconds 10]

To see a CPU without bf16 on one with it: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 (the machine line says
so). torch.compile is left out: its first compile takes longer than the short runs it would speed up here.
"""
from __future__ import annotations

import torch

from ..models.devices import resolve_device
from ..models.precision import use_bf16
from ..training.probe import train_images_per_s
from .timing import machine_line

VARIANTS = [  # (label, batch, crop, threads, channels_last)
    ("default: batch 128, whole 48x48 faces, channels_last", 128, None, None, True),
    ("contiguous layout (NCHW) instead of channels_last", 128, None, None, False),
    ("batch 64", 64, None, None, True),
    ("batch 256", 256, None, None, True),
    ("random 44x44 crops (--crop 44)", 128, 44, None, True),
    ("random 40x40 crops (--crop 40)", 128, 40, None, True),
    ("1 thread", 128, None, 1, True),
]


def run(args) -> list[dict]:
    device = resolve_device(args.device)
    bf16 = use_bf16(device, True)
    threads = torch.get_num_threads()
    print(f"machine: {machine_line()}")
    print(f"{args.arch} training step ({'bf16' if bf16 else 'fp32'}), {args.seconds:g} s per row, one run each")
    rows, base = [], None
    for label, batch, crop, n_threads, channels_last in VARIANTS:
        torch.set_num_threads(n_threads or threads)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        speed, steps, _ = train_images_per_s(args.arch, device, batch, args.seconds, bf16, crop, layout=layout)
        base = base or speed
        rows.append({"variant": label, "images_per_s": speed, "steps": steps, "vs_default": speed / base})
        print(f"  {label:55s} {speed:7.1f} images/s  {speed / base:5.2f}x  ({steps} steps)", flush=True)
    torch.set_num_threads(threads)
    return rows

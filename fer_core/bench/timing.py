"""The one way benchmarks time things: a warm-up call first, then the mean or the median of many."""
from __future__ import annotations

import statistics
import time


def timed(fn, seconds: float, min_runs: int = 2) -> tuple[float, int]:
    """Mean seconds per call of fn over at least `min_runs` calls or `seconds`, after one warm-up."""
    fn()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < seconds:
        fn()
        runs += 1
    return (time.perf_counter() - start) / runs, runs


def median_ms(fn, repeats: int) -> float:
    """Median milliseconds per call of fn over `repeats` calls, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def machine_line() -> str:
    """The CPU and what PyTorch may use of it, with the library versions: printed beside every figure."""
    import os
    import platform
    from pathlib import Path

    import onnxruntime
    import torch

    from ..models.precision import cpu_flags, cpu_supports_bf16
    try:
        model = next(ln.partition(":")[2].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    flags = cpu_flags()
    native = "AVX512-BF16/AMX" if {"avx512_bf16", "amx_bf16"} & set(flags) else "AVX2" if "avx2" in flags else "?"
    restricted = ", ".join(f"{k}={os.environ[k]}" for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")
                           if os.environ.get(k))
    return (f"{model}, {os.cpu_count()} cores, native {native}; PyTorch uses {torch.backends.cpu.get_cpu_capability()}"
            f" ({'bf16' if cpu_supports_bf16() else 'fp32 only'})"
            f"{f', restricted by {restricted} (ONNX Runtime ignores that)' if restricted else ''}"
            f"; {torch.get_num_threads()} thread{'s' if torch.get_num_threads() != 1 else ''}; torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}")

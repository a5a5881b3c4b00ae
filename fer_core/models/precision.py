"""Mixed precision: bf16 autocast where the device runs bf16 natively, fp32 elsewhere; channels_last on both.

On CUDA that is any GPU PyTorch reports bf16 support for. On a CPU it needs the AVX512-BF16 or AMX
instructions: without them oneDNN emulates bf16 and is slower than fp32, so those CPUs stay in fp32.
Master weights and checkpoints are always fp32; only the forward pass runs in bf16.
"""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# oneDNN's ISA levels that include bf16 instructions: ONEDNN_MAX_CPU_ISA=AVX2 (or AVX512_CORE) turns them off
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")


def cpu_flags() -> list[str]:
    """The CPU's feature flags from /proc/cpuinfo ([] where unknown)."""
    try:
        line = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    except OSError:
        return []
    return line.partition(":")[2].split()


@functools.cache
def cpu_supports_bf16() -> bool:
    """True when this CPU has native bf16 instructions and PyTorch may use them: read from /proc/cpuinfo, and
    honouring a restriction to older instructions (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2), which is
    how a machine with bf16 shows what CPUs without it do. False where unknown."""
    if not torch.backends.mkldnn.is_available():
        return False
    if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2", "ZVECTOR", "VSX"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa and not isa.startswith(_ONEDNN_BF16_ISAS):
        return False
    return any(flag in cpu_flags() for flag in _CPU_BF16_FLAGS)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_supports_bf16()


def use_bf16(device: torch.device, amp: bool = True) -> bool:
    """Whether a forward pass on `device` runs in bf16: asked for (`amp`) and natively supported."""
    return amp and bf16_supported(device)


def autocast(device: torch.device, enabled: bool):
    """bf16 autocast on `device` when `enabled`, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA and on CPUs, in bf16 and fp32 alike (oneDNN's blocked kernels). Measured with
    fer_vgg_small on 2 cores, AVX2 (restricted) fp32: training +25%, inference at batch 256 +45% (docs/speed.md)."""
    return torch.channels_last if device.type in ("cuda", "cpu") else torch.contiguous_format


def precision_name(bf16: bool) -> str:
    return "bf16" if bf16 else "fp32"

"""How a model runs on this machine: its engine.

- `torch`: PyTorch, in bf16 where the device has it natively (models/precision.py), else fp32;
- `onnxruntime`: the model's ONNX export (models/onnx.py) run by ONNX Runtime, fp32;
- `int8`: that export quantized to int8 (models/quantize.py), calibrated on FER2013 training faces;
- `auto`: the fastest of those on this machine at the caller's batch size whose predictions agree with
  PyTorch fp32 (top-1 on at least 99% of the probe faces). The answer is measured once per model file (its
  identity: a re-shipped model is measured again), CPU (flags and the instructions PyTorch may use), library
  versions, batch size and threads, and kept in the cache folder's engines.json.

A choice written on one CPU does not hold on another: ONNX Runtime beats PyTorch at every batch size on an
AVX2-only CPU, while PyTorch's bf16 wins at large batches on CPUs with AVX512-BF16 (docs/speed.md).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.sources import resolve_data_path
from ..errors import FERError
from ..evaluation.metrics import predict_images
from ..models.loading import cached_export, file_identity, load_model, model_digest, renamed_model
from ..models.onnx import OnnxModel
from ..models.precision import autocast, cpu_flags, precision_name, use_bf16
from ..models.quantize import calibration_faces, quantize_onnx
from ..models.registry import normalize_images
from ..paths import default_cache_dir, write_text_atomic

log = logging.getLogger(__name__)

ENGINES = ("torch", "onnxruntime", "int8")
AUTO = "auto"
ENGINE_CHOICES = (AUTO, *ENGINES)
ENGINE_ENV = "FER_ENGINE"  # the default engine where a caller names none (tests pin `torch`)
MIN_AGREEMENT = 0.99
PROBE_FACES = 256


def default_engine() -> str:
    engine = os.environ.get(ENGINE_ENV, AUTO)
    return engine if engine in ENGINE_CHOICES else AUTO


def check_engine(engine: str) -> str:
    if engine not in ENGINE_CHOICES:
        raise FERError(f"unknown engine '{engine}': choose one of {', '.join(ENGINE_CHOICES)}")
    return engine


def cached_int8(path: str | os.PathLike, data: str | os.PathLike | None = None) -> Path:
    """The int8 quantization of the model at `path`, made once into the cache (calibration needs the dataset)."""
    out = default_cache_dir() / "onnx" / f"{model_digest(path)}.int8.onnx"
    if not out.is_file():
        quantize_onnx(cached_export(path), out, calibration_faces(data))
    return out


def load_engine(path: str | os.PathLike, engine: str, device: str | torch.device = "cpu",
                threads: int | None = None) -> nn.Module:
    """The model at `path` run by `engine` (not `auto`: see choose_engine). An .onnx file runs as what it is;
    on a GPU every engine is PyTorch. Raises FERError when the engine cannot run this model here."""
    path, device = renamed_model(path), torch.device(device)
    if path.suffix == ".onnx":
        return OnnxModel(path, threads)
    if check_engine(engine) == "torch" or device.type != "cpu":
        return load_model(path, device)
    try:
        return OnnxModel(cached_export(path) if engine == "onnxruntime" else cached_int8(path), threads)
    except FERError:
        raise
    except Exception as exc:  # the exporter's or quantizer's own errors: this engine is not available here
        raise FERError(f"the {engine} engine cannot run {path.name}: {type(exc).__name__}: {exc}") from None


def engine_name(model: nn.Module, device: str | torch.device = "cpu", amp: bool = True) -> str:
    """What ran, in words: 'PyTorch bf16', 'ONNX Runtime int8'..."""
    if isinstance(model, OnnxModel):
        return f"ONNX Runtime {model.precision}"
    return f"PyTorch {precision_name(use_bf16(torch.device(device), amp))}"


def machine_signature(threads: int | None) -> dict:
    """What an engine's speed depends on besides the model: the CPU and what PyTorch may use of it, versions."""
    import onnxruntime
    return {"cpu": hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:16],
            "machine": platform.machine(), "capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", ""), "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "threads": threads or torch.get_num_threads()}


def _choices_file() -> Path:
    return default_cache_dir() / "engines.json"


def probe_source() -> str:
    """What the probe compares engines on here: "FER2013" where the dataset is found, else "noise". Part of a
    remembered choice's key: a choice made on noise (int8 refused more often) is made again once the data is here."""
    try:
        resolve_data_path()
    except FERError:
        return "noise"
    return "FER2013"


def _probe_faces(n: int = PROBE_FACES) -> np.ndarray:
    """Faces to compare the engines' answers on: FER2013 training faces where the dataset is here, else noise
    (which still catches an engine that is broken, not one that is slightly off)."""
    try:
        return calibration_faces(n=n, seed=1)
    except FERError:
        return np.random.default_rng(0).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def _timed_ms(model: nn.Module, x: torch.Tensor, device: torch.device, repeats: int = 5) -> float:
    times = []
    with torch.inference_mode(), autocast(device, use_bf16(device) and not isinstance(model, OnnxModel)):
        for i in range(repeats + 1):  # the first call warms up (allocations, oneDNN's kernel choice)
            start = time.perf_counter()
            model(x)
            if i:
                times.append((time.perf_counter() - start) * 1000)
    return float(min(times))  # the least disturbed run: other processes only ever add time


def measure_engines(path: str | os.PathLike, batch: int, device: str | torch.device = "cpu",
                    threads: int | None = None) -> dict:
    """Each engine's milliseconds per batch of `batch` faces and its top-1 agreement with PyTorch fp32; an
    engine that cannot run here has an `error` instead."""
    device = torch.device(device)
    faces = _probe_faces()
    reference = predict_images(load_model(path, device), faces, 1, PROBE_FACES, device, amp=False).argmax(1)
    x = normalize_images(torch.from_numpy(faces[np.arange(batch) % len(faces)])).unsqueeze(1)
    results = {}
    for engine in ENGINES:
        try:
            model = load_engine(path, engine, device, threads)
            agreement = float((predict_images(model, faces, 1, PROBE_FACES, device).argmax(1) == reference).mean())
            results[engine] = {"ms": _timed_ms(model, x, device), "agreement": agreement,
                               "name": engine_name(model, device)}
        except Exception as exc:  # any engine may fail here (a missing library, an exporter error): skip it
            results[engine] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return results


def choose_engine(path: str | os.PathLike, batch: int, device: str | torch.device = "cpu",
                  threads: int | None = None) -> str:
    """The fastest engine whose answers agree with PyTorch fp32, measured once and remembered (see above)."""
    path, device = renamed_model(path), torch.device(device)
    if device.type != "cpu" or path.suffix == ".onnx":
        return "torch" if path.suffix != ".onnx" else "onnxruntime"
    key = hashlib.sha256(json.dumps({"model": file_identity(path), "batch": batch, "device": str(device),
                                     "probe": probe_source(), **machine_signature(threads)},
                                    sort_keys=True).encode()).hexdigest()[:24]
    try:
        known = json.loads(_choices_file().read_text())
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), dict) and known[key].get("engine") in ENGINES:
        return known[key]["engine"]
    measured = measure_engines(path, batch, device, threads)
    usable = {e: m["ms"] for e, m in measured.items() if "ms" in m and m["agreement"] >= MIN_AGREEMENT}
    engine = min(usable, key=usable.get) if usable else "torch"
    log.info("engine for %s at batch %d: %s (%s)", path.name, batch, engine, measured)
    known[key] = {"engine": engine, "model": str(path), "batch": batch, "measured": measured}
    try:
        write_text_atomic(_choices_file(), json.dumps(known, indent=1))
    except FERError as exc:  # a read-only cache: measure again next time
        log.warning("could not remember the engine choice (%s)", exc)
    return engine


def engine_model(path: str | os.PathLike, engine: str | None = None, batch: int = 1,
                 device: str | torch.device = "cpu", threads: int | None = None) -> nn.Module:
    """The model at `path` run by `engine` (None: $FER_ENGINE, else auto), or by the engine `auto` chooses for
    batches of `batch` faces."""
    engine = check_engine(engine or default_engine())
    if engine == AUTO:
        engine = choose_engine(path, batch, device, threads)
    return load_engine(path, engine, device, threads)

"""Evaluation speed per engine: what `evaluate --split test --tta` costs with each way of running the model.

    python -m fer_core bench evaluate [--checkpoint CKPT] [--views 10] [--limit N]

One run times every engine on the same faces (PrivateTest, each in `views` TTA views, batches of 256) and
prints faces/s, the accuracy reached, and the ratio to PyTorch fp32 (`--engine torch --amp off`), then what
`auto` chose. To see a CPU without bf16 on one with it: ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
(ONNX Runtime picks its own kernels and ignores them; the machine line says so).
"""
from __future__ import annotations

import time

from ..data.fer2013 import load_dataset
from ..errors import FERError
from ..evaluation.metrics import predict_images
from ..inference.engines import choose_engine, engine_model, engine_name
from ..inference.scoring import EVALUATION_BATCH
from ..paths import default_checkpoint
from .timing import machine_line


def bench_evaluate(checkpoint: str | None = None, views: int = 10, limit: int | None = None,
                   data: str | None = None) -> list[dict]:
    checkpoint = checkpoint or str(default_checkpoint())
    test = load_dataset(data)["test"]
    images, labels = test.images[:limit], test.labels[:limit]
    print(f"{checkpoint} on {len(images):,} PrivateTest faces x {views} views, batch {EVALUATION_BATCH}")
    print(f"machine: {machine_line()}")
    start = time.perf_counter()
    chosen = choose_engine(checkpoint, EVALUATION_BATCH)
    print(f"auto chose {chosen} (measuring took {time.perf_counter() - start:.1f} s, once per model and machine)")
    rows = []
    for engine, amp in (("torch", False), ("torch", True), ("onnxruntime", True), ("int8", True)):
        try:
            model = engine_model(checkpoint, engine, EVALUATION_BATCH)
        except FERError as exc:
            print(f"{engine}: not available here ({exc})")
            continue
        name = engine_name(model, "cpu", amp)
        if any(r["engine"] == name for r in rows):  # PyTorch with amp is fp32 where bf16 is not native
            continue
        predict_images(model, images[:EVALUATION_BATCH], views, EVALUATION_BATCH, "cpu", amp=amp)  # warm-up
        start = time.perf_counter()
        probs = predict_images(model, images, views, EVALUATION_BATCH, "cpu", amp=amp)
        seconds = time.perf_counter() - start
        rows.append({"engine": name, "seconds": seconds, "faces_per_s": len(images) / seconds,
                     "accuracy": float((probs.argmax(1) == labels).mean()), "auto": engine == chosen})
    base = rows[0]["seconds"]
    print(f"{'engine':26}{'seconds':>9}{'faces/s':>9}{'accuracy':>10}{'vs PyTorch fp32':>17}")
    for r in rows:
        print(f"{r['engine'] + (' (auto)' if r['auto'] else ''):26}{r['seconds']:9.1f}{r['faces_per_s']:9.0f}"
              f"{100 * r['accuracy']:9.2f}%{base / r['seconds']:16.1f}x")
    return rows


def run(args) -> None:
    bench_evaluate(args.checkpoint, args.views, args.limit, args.data)

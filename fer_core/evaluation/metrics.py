"""Metrics (scikit-learn) and evaluation of a model on a split, with or without TTA."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from ..labels import EMOTIONS, NUM_CLASSES
from ..models.precision import autocast, memory_format, use_bf16
from ..models.registry import normalize_images
from .tta import predict_proba


def metrics_report(y_true, y_pred) -> dict:
    """The evaluate JSON contract: n, accuracy, macro/weighted F1, per_class, confusion_matrix, labels."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    classes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0)
    cm = confusion_matrix(y_true, y_pred, labels=classes)
    return {
        "n": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=classes, average="weighted", zero_division=0)),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]),
                             "f1": float(f1[i]), "support": int(support[i])} for i, name in enumerate(EMOTIONS)},
        "confusion_matrix": cm.astype(int).tolist(),
        "labels": list(EMOTIONS),
    }


@torch.no_grad()
def predict_images(model: torch.nn.Module, images: np.ndarray, views: int = 1, batch_size: int = 256,
                   device: str | torch.device = "cpu", progress=None, amp: bool = True) -> np.ndarray:
    """Class probabilities (N, 7) for uint8 48x48 faces; all TTA views of a batch in one pass.

    Batches run in bf16 where the device runs it natively and `amp` is on, fp32 otherwise: on the
    project's AVX512-BF16 CPU bf16 is faster at every batch size from 1 (`bench`, README).
    `progress(done, total)` is called with the number of images predicted so far."""
    device = torch.device(device)
    bf16 = use_bf16(device, amp)
    model.eval().to(memory_format=memory_format(device))
    chunk = max(1, batch_size // views)
    out = []
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).to(device)
        with autocast(device, bf16):
            out.append(predict_proba(model, normalize_images(x.unsqueeze(1)), views).cpu())
        if progress:
            progress(min(start + chunk, len(images)), len(images))
    return torch.cat(out).numpy() if out else np.zeros((0, NUM_CLASSES), np.float32)


def split_predictions(model, splits, views: int, device="cpu", progress=None) -> dict[tuple[str, str], np.ndarray]:
    """{(split, "plain"/"tta"): (N, 7) probabilities} on val and test: what cards' predictions files hold.

    `progress(done, total)` counts face views (a TTA pass weighs `views` times a plain one) over all four passes."""
    passes = [(name, mode, v) for name in ("val", "test") for mode, v in (("plain", 1), ("tta", views))]
    total = sum(len(splits[name].images) * v for name, _, v in passes)
    probs, finished = {}, 0
    for name, mode, v in passes:
        report = None if progress is None else (
            lambda done, _n, before=finished, v=v: progress(before + done * v, total))
        probs[name, mode] = predict_images(model, splits[name].images, v, 256, device, progress=report)
        finished += len(splits[name].images) * v
    return probs


def reports_from_predictions(probs: dict[tuple[str, str], np.ndarray], labels: dict[str, np.ndarray], views: int,
                             leaked: np.ndarray | None = None) -> dict:
    """{"val": {"plain": report, "tta": report}, "test": {...}}: what eval.json and model cards hold.

    With `leaked` (the test images that have a copy in Training), each test report carries a "clean" block."""
    from ..data.leakage import clean_report
    metrics = {}
    for (name, mode), p in probs.items():
        report = metrics_report(labels[name], p.argmax(1))
        report.update(tta=mode == "tta", tta_views=views if mode == "tta" else 1)
        if name == "test" and leaked is not None:
            report["clean"] = clean_report(labels[name], p.argmax(1), leaked)
        metrics.setdefault(name, {})[mode] = report
    return metrics


def evaluate_splits(model, splits, views: int, device="cpu", leaked: np.ndarray | None = None,
                    progress=None) -> dict:
    """reports_from_predictions of `model` on val and test, with TTA off and on (`progress`: split_predictions')."""
    probs = split_predictions(model, splits, views, device, progress)
    return reports_from_predictions(probs, {name: splits[name].labels for name in ("val", "test")}, views, leaked)

"""Metrics (scikit-learn) and evaluation of a model on a split, with or without TTA."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from .labels import EMOTIONS, NUM_CLASSES
from .models import normalize_images
from .precision import autocast, use_bf16
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
    model.eval()
    device = torch.device(device)
    chunk = max(1, batch_size // views)
    out = []
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + chunk])).to(device)
        with autocast(device, use_bf16(device, amp)):
            out.append(predict_proba(model, normalize_images(x.unsqueeze(1)), views).cpu())
        if progress:
            progress(min(start + chunk, len(images)), len(images))
    return torch.cat(out).numpy() if out else np.zeros((0, NUM_CLASSES), np.float32)


def evaluate_model(model, split, views: int = 1, device="cpu", batch_size: int = 256, amp: bool = True) -> dict:
    """metrics_report of `model` on a data.Split, plus the TTA setting used."""
    probs = predict_images(model, split.images, views, batch_size, device, amp=amp)
    report = metrics_report(split.labels, probs.argmax(1))
    report["tta"] = views > 1
    report["tta_views"] = views
    return report


def evaluate_splits(model, splits, views: int, device="cpu") -> dict:
    """{"val": {"plain": report, "tta": report}, "test": {...}}: what eval.json and model cards hold."""
    return {name: {"plain": evaluate_model(model, splits[name], 1, device),
                   "tta": evaluate_model(model, splits[name], views, device)} for name in ("val", "test")}

"""Confidences that mean what they say: expected calibration error, the reliability diagram, and temperature
scaling (Guo et al. 2017).

A network's softmax is usually over-confident. Temperature scaling divides its log-probabilities by one scalar
T, fitted on PublicTest by minimising the negative log-likelihood; T cannot change the argmax, so accuracy stays
exactly as it was. One T per model and TTA setting, since averaging views already softens the probabilities.
ECE is torchmetrics' (15 equal-width bins, L1): the well-kept implementation, not ours.
"""
from __future__ import annotations

import numpy as np
import torch

BINS = 15


def _log_probs(probs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(probs, dtype=np.float32)).clamp_min(1e-7).log()


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities with their log divided by `temperature` and renormalised (1.0: unchanged)."""
    if temperature == 1.0:
        return np.asarray(probs, dtype=np.float32)
    return (_log_probs(probs) / temperature).softmax(-1).numpy()


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    from torchmetrics.functional.classification import multiclass_calibration_error
    probs_t = torch.from_numpy(np.asarray(probs, dtype=np.float32))
    return float(multiclass_calibration_error(probs_t, torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                                              num_classes=probs_t.shape[1], n_bins=bins, norm="l1"))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> list[dict]:
    """Per confidence bin (equal width, as the ECE's): mean confidence, accuracy and count; empty bins left out."""
    confidence, predicted = np.asarray(probs).max(1), np.asarray(probs).argmax(1)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(mask.sum()),
                         "confidence": float(confidence[mask].mean()),
                         "accuracy": float((predicted[mask] == np.asarray(labels)[mask]).mean())})
    return rows


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of `scaled(probs, T)` on these labels (fitted on PublicTest only)."""
    log_p = _log_probs(probs)
    target = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    log_t = torch.zeros(1, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(log_p / log_t.exp(), target)
        loss.backward()
        return loss
    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibrate(val_probs: np.ndarray, val_labels: np.ndarray, test_probs: np.ndarray,
              test_labels: np.ndarray) -> dict:
    """T fitted on PublicTest (val), with the ECE before and after on both splits; what a card stores."""
    temperature = fit_temperature(val_probs, val_labels)
    result = {"temperature": round(temperature, 4), "bins": BINS, "fitted_on": "val"}
    for split, probs, labels in (("val", val_probs, val_labels), ("test", test_probs, test_labels)):
        result[f"{split}_ece"] = round(expected_calibration_error(probs, labels), 5)
        result[f"{split}_ece_calibrated"] = round(expected_calibration_error(scaled(probs, temperature), labels), 5)
    return result

"""Evaluation: metrics and batched prediction (metrics), test-time augmentation (tta), the on-disk cache of
per-image predictions (prediction_cache), McNemar's test (significance) and the ONNX export check (export_check).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "calibrate": "calibration", "reliability": "calibration", "scaled": "calibration",
    "metrics_report": "metrics", "SaliencyUnavailable": "saliency", "class_mean_maps": "saliency",
    "saliency_maps": "saliency", "mcnemar": "significance", "DEFAULT_VIEWS": "tta",
    "MAX_VIEWS": "tta",
})

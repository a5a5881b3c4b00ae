"""Evaluation: metrics and batched prediction (metrics), test-time augmentation (tta), the on-disk cache of
per-image predictions (prediction_cache), McNemar's test (significance) and the ONNX export check (export_check)."""

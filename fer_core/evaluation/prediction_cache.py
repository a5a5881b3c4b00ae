"""Per-image probabilities of a checkpoint (or saved ensemble) on a dataset split, cached on disk.

Compare's cell explorer and ensembles ask for the same predictions again and again; the cache key is
the model files' versions, the dataset source, the split and the TTA views.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError
from ..labels import EMOTIONS
from ..models.loading import file_identity
from ..paths import StorageError, atomic_write, default_cache_dir


def _cache_path(checkpoint: Path, source: str, split: str, views: int, cache_dir: Path | None) -> Path:
    stamp = file_identity(checkpoint)  # a saved ensemble: its members' files are what changes
    key = hashlib.sha256(f"{stamp}|{source}|{split}|{views}".encode()).hexdigest()[:20]
    return Path(cache_dir or default_cache_dir()) / "predictions" / f"{key}.npz"


def prediction_cache_path(checkpoint: str | os.PathLike, dataset, split: str, views: int,
                          cache_dir: str | os.PathLike | None = None) -> Path:
    """Where `predictions` keeps a checkpoint's probabilities: named by the file versions it reads."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    return _cache_path(checkpoint, f"{dataset.source}:{len(dataset[split])}", split, views,
                       Path(cache_dir) if cache_dir else None)


def cached_predictions(checkpoint: str | os.PathLike, dataset, split: str, views: int = 1,
                       cache_dir: str | os.PathLike | None = None) -> np.ndarray | None:
    """The on-disk predictions of `predictions`, or None when they were never computed (or are damaged)."""
    return _read_cached(prediction_cache_path(checkpoint, dataset, split, views, cache_dir), len(dataset[split]))


def _read_cached(cache: Path, n: int) -> np.ndarray | None:
    if not cache.exists():
        return None
    try:
        with np.load(cache) as z:
            probs = z["probs"]
    except Exception:  # a damaged cache file is recomputed, never fatal
        return None
    return probs if probs.shape == (n, len(EMOTIONS)) else None


def predictions(checkpoint: str | os.PathLike, dataset, split: str, views: int = 1,
                cache_dir: str | os.PathLike | None = None, device: str = "cpu", progress=None) -> np.ndarray:
    """(N, 7) probabilities of a checkpoint (or saved ensemble) on a split, cached on disk.

    The cache key is the file's path, size and mtime, the dataset source, the split and the TTA
    views, so a retrained or re-shipped checkpoint is predicted again. `progress(done, total)` is
    called as images are predicted. Raises CheckpointError.
    """
    from ..models.loading import load_model
    from .metrics import predict_images
    cache = prediction_cache_path(checkpoint, dataset, split, views, cache_dir)
    probs = _read_cached(cache, len(dataset[split]))
    if probs is not None:
        return probs
    model = load_model(Path(checkpoint), device)
    probs = predict_images(model, dataset[split].images, views, batch_size=256, device=device, progress=progress)
    try:
        with atomic_write(cache) as tmp, open(tmp, "wb") as fh:  # a unique temporary: writers never collide
            np.savez_compressed(fh, probs=probs.astype(np.float32))
    except StorageError:
        pass  # no cache: the next visit predicts again
    return probs

"""A leakage-free PrivateTest ("clean PrivateTest"): the test images that have no copy in Training.

FER2013 was scraped from image search, and the data-health audit finds PrivateTest faces that are also
in Training, byte for byte or nearly. A network may have memorised those, so every figure on PrivateTest
is also reported without them. The rule is the audit's, applied to Training/PrivateTest pairs only
(PublicTest is used for model selection, not for training).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .audit import NEAR_BITS, NEAR_CORRELATION, audit_dataset

CLEAN_RULE = (f"PrivateTest images with a copy in Training removed: byte-identical pixels, or a near-duplicate "
              f"(64-bit dHash within {NEAR_BITS} bits, confirmed by pixel correlation >= {NEAR_CORRELATION}), "
              f"as found by the data-health audit")


def leaked_test_mask(dataset, cache_dir: str | os.PathLike | None = None) -> np.ndarray:
    """(N_test,) bool, True for PrivateTest images that have a copy in Training.

    `dataset`: a FER2013 or a {split name: Split} mapping with "train" and "test" (a run's splits: images it
    left out of training are then no leak). The audit takes seconds, so the answer is cached on disk, keyed
    by the pixels and labels of both splits."""
    from ..paths import StorageError, default_cache_dir, write_text_atomic
    train, test = dataset["train"], dataset["test"]
    digest = hashlib.blake2b(digest_size=16)
    for split in (train, test):
        digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(np.ascontiguousarray(split.labels).tobytes())
    cache = Path(cache_dir or default_cache_dir()) / "leakage" / f"{digest.hexdigest()}.json"
    try:
        leaked_ids = set(json.loads(cache.read_text()))
    except (OSError, ValueError):
        result = audit_dataset({"train": train, "test": test})
        leaked_ids = {image_id for group in result.exact_groups + result.near_groups if "train" in group.splits
                      for image_id, split in zip(group.ids, group.splits) if split == "test"}
        try:
            write_text_atomic(cache, json.dumps(sorted(leaked_ids)))
        except StorageError:
            pass  # no cache: the next call audits again
    return np.array([str(i) in leaked_ids for i in test.ids], dtype=bool)


def clean_report(labels: np.ndarray, predicted: np.ndarray, leaked: np.ndarray) -> dict:
    """Accuracy on the PrivateTest images that are not in Training: {"n", "removed", "accuracy", "rule"}."""
    keep = ~np.asarray(leaked, dtype=bool)
    n = int(keep.sum())
    accuracy = float((np.asarray(labels)[keep] == np.asarray(predicted)[keep]).mean()) if n else 0.0
    return {"n": n, "removed": int((~keep).sum()), "accuracy": accuracy, "rule": CLEAN_RULE}

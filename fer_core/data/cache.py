"""The decoded dataset on disk: decoding all 35,887 images takes seconds, so `load_dataset` keeps the result
in the cache folder as .npz, keyed by the source's path and its fingerprint (sizes and change times)."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..paths import StorageError, atomic_write, default_cache_dir
from .dataset import FER2013, SPLITS, Split

log = logging.getLogger(__name__)

CACHE_VERSION = 1



def _fingerprint(source: Path) -> str:
    h = hashlib.sha256()
    if source.is_file():
        st = source.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    else:
        for p in sorted(source.rglob("*")):
            if p.is_file():
                st = p.stat()
                h.update(f"{p.relative_to(source).as_posix()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cache_file_for(source: Path, cache_dir) -> Path:
    source_key = hashlib.sha256(f"v{CACHE_VERSION}:{source.resolve()}".encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()) / f"{source_key}-{_fingerprint(source)}.npz"


def write_cache(cache_file: Path, ds: FER2013) -> None:
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        for stale in cache_file.parent.glob(cache_file.name.split("-")[0] + "-*.npz"):
            stale.unlink(missing_ok=True)  # the source changed: its old cache is useless
        arrays = {f"{n}_{k}": getattr(s, k) for n, s in ds.splits.items() for k in ("images", "labels", "ids")}
        meta = {"format": ds.format, "val_from_train": ds.val_from_train, "problems": ds.problems}
        with atomic_write(cache_file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
    except (OSError, StorageError) as exc:
        log.warning("could not write the dataset cache %s (%s); the next load decodes again", cache_file, exc)


def read_cache(cache_file: Path, source: Path) -> FER2013:
    with np.load(cache_file, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        splits = {n: Split(z[f"{n}_images"], z[f"{n}_labels"], z[f"{n}_ids"]) for n in SPLITS}
    return FER2013(str(source), meta["format"], splits, meta["val_from_train"], meta["problems"])

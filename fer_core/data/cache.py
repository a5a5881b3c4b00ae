"""The decoded dataset on disk: decoding all 35,887 images takes seconds, so `load_dataset` keeps the result
in the cache folder as .npz, keyed by the source's path and its fingerprint (sizes and change times)."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from ..paths import StorageError, atomic_write, default_cache_dir
from ..labels import NUM_CLASSES
from .dataset import FER2013, IMAGE_SIZE, SPLITS, Split

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
    """The cached dataset, checked as any input is (ValueError when it is not what write_cache writes: the caller
    then decodes the source again)."""
    with np.load(cache_file, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        splits = {n: Split(z[f"{n}_images"], z[f"{n}_labels"], z[f"{n}_ids"]) for n in SPLITS}
    for name, split in splits.items():
        images, labels, ids = split.images, split.labels, split.ids
        if (images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE)
                or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) != len(images)
                or ids.ndim != 1 or ids.dtype.kind != "U" or len(ids) != len(images)
                or (len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES))):
            raise ValueError(f"its {name} split does not hold 48x48 uint8 images with one label in 0..6 and one id each")
    if not (isinstance(meta, dict) and meta.get("format") in ("zip", "folder", "csv")
            and isinstance(meta.get("val_from_train"), bool) and isinstance(meta.get("problems"), list)):
        raise ValueError("its description is not one this version writes")
    return FER2013(str(source), meta["format"], splits, meta["val_from_train"], [str(p) for p in meta["problems"]])

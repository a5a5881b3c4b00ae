"""Loading FER2013: `load_dataset(path)` finds the source (sources.py), decodes it (readers.py) and keeps the
result in the on-disk cache (cache.py). The dataset it returns is a `dataset.FER2013`."""
from __future__ import annotations

import logging
import os

from .cache import cache_file_for, read_cache, write_cache
from .dataset import FER2013
from .readers import read_csv, read_image_tree
from .sources import resolve_data_path

log = logging.getLogger(__name__)


def load_dataset(path: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True, strict: bool = False) -> FER2013:
    """Load FER2013 from a zip, folder or CSV, through the on-disk cache.

    Undecodable images and bad CSV rows are skipped, and images that are not 48x48 are resized;
    each such case is one line in `problems` (and a log warning). With `strict=True` the first one
    raises DataError instead.
    """
    source = resolve_data_path(path)
    cache_file = cache_file_for(source, cache_dir) if use_cache else None
    if cache_file is not None and cache_file.exists():
        try:
            return read_cache(cache_file, source)
        except Exception as exc:  # a damaged cache is rebuilt, never fatal
            log.warning("ignoring unreadable dataset cache %s (%s)", cache_file, exc)
    reader = read_csv if source.suffix.lower() == ".csv" else read_image_tree
    dataset = reader(source, strict)
    if cache_file is not None:
        write_cache(cache_file, dataset)
    return dataset

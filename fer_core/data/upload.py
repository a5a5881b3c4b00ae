"""A dataset given as an upload (the dashboard's Home): kept as data/fer2013.zip only once it is checked."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import BinaryIO

from ..errors import DataError
from ..paths import atomic_write, data_dir
from .archive import verify_archive
from .dataset import check_trainable
from .fer2013 import load_dataset


def upload_target() -> Path:
    """Where an uploaded dataset is kept: data/fer2013.zip."""
    return data_dir() / "fer2013.zip"


def save_upload(uploaded: BinaryIO, replace: bool = False) -> Path:
    """Keep an uploaded zip as data/fer2013.zip once it is checked: the archive's limits, every member's checksum
    and encryption (without extracting it to memory), then a FER2013 with at least two classes to train on.

    A refused upload leaves nothing behind (DataError, StorageError); a dataset already at the target is
    replaced only with `replace`."""
    target = upload_target()
    if target.exists() and not replace:
        raise DataError(f"{target} already holds a dataset: confirm that the upload should replace it")
    with atomic_write(target, "saving the upload to") as tmp:
        with open(tmp, "wb") as fh:
            shutil.copyfileobj(uploaded, fh)
        try:
            verify_archive(tmp)
            check_trainable(load_dataset(tmp, use_cache=False))
        except DataError as exc:  # named as the user knows it, not by its temporary file
            raise DataError(str(exc).replace(str(tmp), getattr(uploaded, "name", None) or "the upload")) from None
    return target

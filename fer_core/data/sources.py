"""Where the dataset is, and a cheap look that it is FER2013: the Kaggle zip, its extracted folder or the
original fer2013.csv, given as a path, $FER_DATA or the project's data/ folder."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path, PurePosixPath

from ..errors import DataError
from ..labels import label_index
from ..paths import data_dir, os_reason, shown
from .archive import open_archive, open_text_member

SPLIT_DIRS = {"train": "train", "training": "train", "val": "val", "valid": "val",
              "validation": "val", "test": "test", "testing": "test"}
# The image files this product reads, dataset members and user photos alike (inference.images reads the same).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")

HOW_TO_GET = ("Download FER2013 from Kaggle (https://www.kaggle.com/datasets/msambare/fer2013, "
              "'archive.zip') and pass it with --data PATH, set FER_DATA, or put it in data/.")


def hidden(rel: PurePosixPath) -> bool:
    """A member no dataset holds on purpose: dot files and macOS's __MACOSX copies."""
    return any(p.startswith(".") or p == "__MACOSX" for p in rel.parts)



def resolve_data_path(path: str | os.PathLike | None = None) -> Path:
    """The dataset to use: `path`, else $FER_DATA, else the project's data/ folder."""
    if path is None or str(path) == "":
        path = os.environ.get("FER_DATA") or data_dir()
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise DataError(f"dataset not found: {shown(path, 200)} does not exist. {HOW_TO_GET}") from None
        raise DataError(f"dataset {shown(path, 200)}: {os_reason(exc)}") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):  # a device, a pipe, a socket
        raise DataError(f"{shown(path, 200)} is neither a file nor a folder: give the Kaggle zip, its extracted "
                        f"folder or fer2013.csv")
    if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(mode) else 0)):
        raise DataError(f"dataset {shown(path, 200)}: permission denied (this user cannot read it)")
    return find_source(path)


def check_dataset(path: str | os.PathLike | None = None) -> Path:
    """The dataset source, after a cheap look (names and header, no decoding) that it is FER2013.

    What a job launcher runs before queueing: a wrong file is refused at once, not inside the job."""
    source = resolve_data_path(path)
    if source.is_dir():
        return source  # find_source has seen split or emotion folders
    suffix = source.suffix.lower()
    if suffix == ".csv":
        with open(source, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().lstrip("\ufeff").lower()
        if "emotion" not in header or "pixels" not in header:
            raise DataError(f"{source} is not a FER2013 CSV: its first line is not 'emotion,pixels,Usage'")
        return source
    if suffix != ".zip":
        raise DataError(f"{source} is not a FER2013 dataset: expected the Kaggle .zip, its extracted folder "
                        f"or fer2013.csv")
    with open_archive(source) as zf:
        names = zf.namelist()
        csvs = [n for n in names if n.lower().endswith(".csv") and not hidden(PurePosixPath(n))]
        header = ""
        if csvs:
            with open_text_member(zf, csvs[0]) as fh:
                header = fh.readline().lower()
    images = [PurePosixPath(n).parts for n in names if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES]
    has_csv = "emotion" in header and "pixels" in header
    if not has_csv and not any(len(parts) >= 2 and label_index(parts[-2]) is not None for parts in images):
        raise DataError(f"{source} holds no FER2013 images (<split>/<emotion>/*.jpg) and no fer2013.csv. "
                        f"{HOW_TO_GET}")
    return source


def find_source(path: Path) -> Path:
    """A folder may hold the dataset itself or a zip/CSV of it (as data/ usually does)."""
    if path.is_file():
        return path
    children = [p for p in path.iterdir() if not p.name.startswith(".")]
    names = {p.name.lower() for p in children if p.is_dir()}
    if names & set(SPLIT_DIRS) or any(label_index(n) is not None for n in names):
        return path
    for name in ("fer2013.csv", "archive.zip", "fer2013.zip"):
        if (path / name).is_file():
            return path / name
    zips = sorted(p for p in children if p.suffix.lower() == ".zip")
    csvs = sorted(p for p in children if p.suffix.lower() == ".csv")
    if len(zips) + len(csvs) == 1:
        return (zips + csvs)[0]
    subdirs = [p for p in children if p.is_dir()]
    if len(subdirs) == 1:  # e.g. an archive extracted into its own folder
        return find_source(subdirs[0])
    if not children:
        raise DataError(f"dataset folder is empty: {path}. {HOW_TO_GET}")
    raise DataError(f"no FER2013 dataset found in {path}: expected train/ and test/ folders, "
                    f"a Kaggle archive .zip or fer2013.csv. {HOW_TO_GET}")

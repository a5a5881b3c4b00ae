"""Zip archives, opened with limits: the dataset zip is checked before any member is read.

A zip's central directory says how many members it has, how large each is once decompressed and whether it is
encrypted, without decompressing anything. An archive that claims more than FER2013 could need is refused
there, so a small zip that decompresses to gigabytes (a zip bomb) costs nothing. Python's zipfile never
returns more bytes than a member declares and checks each member's CRC as it is read; a damaged member is one
DataError line naming it.
"""
from __future__ import annotations

import io
import os
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import DataError
from ..paths import shown

FER2013_IMAGES = 35_887
# Kaggle's zip holds 35,887 JPEGs of about 1.5 KB and their folders; fer2013.csv writes each of the 2,304 pixels
# of an image as up to 4 characters (about 290 MB). The caps leave several times that room.
MAX_MEMBERS = 4 * FER2013_IMAGES
MAX_UNCOMPRESSED_BYTES = FER2013_IMAGES * 48 * 48 * 8           # about 660 MB
MAX_COMPRESSION_RATIO = 100                                        # JPEGs do not compress; text about 3-5x
RATIO_CHECKED_ABOVE = 2**20                                        # small members may compress well (folders)
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, OSError, ValueError)


def open_archive(path: str | os.PathLike) -> zipfile.ZipFile:
    """The opened zip, after its central directory has been checked against the limits above."""
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise DataError(f"{shown(path, 200)} is not a valid zip file (damaged or not a zip)") from None
    try:
        check_members(zf.infolist(), path)
    except DataError:
        zf.close()
        raise
    return zf


def check_members(members: list[zipfile.ZipInfo], path: Path) -> None:
    if len(members) > MAX_MEMBERS:
        raise DataError(f"{shown(path, 200)} holds {len(members):,} files, more than FER2013 could "
                        f"(at most {MAX_MEMBERS:,}): refused")
    encrypted = next((m.filename for m in members if m.flag_bits & 0x1), None)
    if encrypted is not None:
        raise DataError(f"{shown(path, 200)} is password-protected ({shown(encrypted)} is encrypted): "
                        f"give the archive as Kaggle serves it, without a password")
    total = sum(m.file_size for m in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise DataError(f"{shown(path, 200)} decompresses to {total / 2**20:,.0f} MB, more than FER2013 could "
                        f"(at most {MAX_UNCOMPRESSED_BYTES / 2**20:,.0f} MB): refused")
    for m in members:
        if m.file_size > RATIO_CHECKED_ABOVE and m.file_size > MAX_COMPRESSION_RATIO * max(m.compress_size, 1):
            raise DataError(f"{shown(path, 200)}: {shown(m.filename)} decompresses {m.file_size // max(m.compress_size, 1):,} "
                            f"times larger than it is stored (a zip bomb?): refused")


def read_member(zf: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes (their CRC checked), or one DataError line naming the damaged member."""
    try:
        return zf.read(name)
    except _READ_ERRORS as exc:
        raise DataError(f"{shown(zf.filename, 200)}: {shown(name)} is damaged ({_reason(exc)})") from None


@contextmanager
def open_text_member(zf: zipfile.ZipFile, name: str) -> Iterator[io.TextIOBase]:
    """A member as UTF-8 text; decoding and read errors become one DataError line."""
    try:
        with zf.open(name) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{shown(zf.filename, 200)}: {shown(name)} is not UTF-8 text") from None
    except _READ_ERRORS as exc:
        raise DataError(f"{shown(zf.filename, 200)}: {shown(name)} is damaged ({_reason(exc)})") from None


def verify_archive(path: str | os.PathLike) -> None:
    """Open the zip with its limits and check every member's CRC, streaming (nothing is kept in memory)."""
    with open_archive(path) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            try:
                with zf.open(info) as fh:
                    while fh.read(2**20):
                        pass
            except _READ_ERRORS as exc:
                raise DataError(f"{shown(path, 200)}: {shown(info.filename)} is damaged ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "CRC" in text:
        return "its checksum does not match: the download is corrupt"
    if "encrypted" in text or "password" in text:
        return "it is encrypted"
    return shown(text or type(exc).__name__, 100)

"""Reading user images into one form: an (H, W, 3) uint8 array in RGB order, upright.

Every way a file can be unusable ends in an ImageError with a message naming the file: empty,
not an image, truncated, larger than MAX_PIXELS (checked from the header, before decoding),
animated. What can be used is converted: EXIF orientation applied, grayscale/palette/CMYK to RGB,
transparency composited on white, 16-bit and float scaled to 0..255.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..data.sources import IMAGE_SUFFIXES
from ..errors import ImageError
from ..paths import existing_file, os_reason, shown

MAX_PIXELS = 50_000_000  # 50 megapixels: a large phone photo is 12-48 MP; a 30000x30000 bomb is 900 MP
IMAGE_EXTENSIONS = IMAGE_SUFFIXES
IMAGE_FORMATS = "JPEG, PNG, WebP, BMP, TIFF or a still GIF"  # what IMAGE_EXTENSIONS are, in words
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".webm")

ImageSource = Any  # a path, bytes, a binary file object (e.g. Streamlit's UploadedFile), a PIL image or an array


def read_image(source: ImageSource, name: str | None = None, color_order: str = "RGB",
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from any supported source, or ImageError.

    `color_order` applies to numpy input only: "RGB" (PIL, skimage, matplotlib) or "BGR" (OpenCV).
    2-D arrays are grayscale, 4-channel arrays carry alpha last. PIL images carry their own mode.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, name or "the array", color_order, max_pixels)
    if isinstance(source, Image.Image):
        name = name or "the image"
        _check_size(source.size, name, max_pixels)
        return _to_rgb(source, name)
    data, name = _read_bytes(source, name)
    return decode_image(data, name, max_pixels)


def decode_image(data: bytes, name: str = "the file", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, WebP, BMP, GIF, TIFF...) to an RGB uint8 array."""
    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit decides
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageError(_too_large_message(name, str(exc), max_pixels)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(f"{name} is not an image we can read (expected {IMAGE_FORMATS})") from None
    _check_size(img.size, name, max_pixels)
    frames = getattr(img, "n_frames", 1)
    if getattr(img, "is_animated", False) and frames > 1:
        raise ImageError(f"{name} is animated ({frames} frames): upload a still photo, "
                         "or the clip as a video (mp4, avi, mov, webm)")
    try:
        img.load()  # Pillow refuses truncated data here (LOAD_TRUNCATED_IMAGES stays False)
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, struct.error...
        reason = "is truncated (the file ends before the image does)" if "truncat" in str(exc).lower() \
            else f"is damaged and cannot be decoded ({str(exc).splitlines()[0][:120]})"
        raise ImageError(f"{name} {reason}") from None
    return _to_rgb(img, name)


def _read_bytes(source: ImageSource, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "the image"
    if isinstance(source, (str, os.PathLike)):
        name = name or shown(Path(source).name)
        path = existing_file(source, "image", 512 * 2**20, ImageError)  # no photo is larger: it would only cost memory
        try:
            return path.read_bytes(), name
        except OSError as exc:
            raise ImageError(f"{name}: {os_reason(exc)}") from None
    if hasattr(source, "getvalue"):  # Streamlit's UploadedFile, io.BytesIO
        return source.getvalue(), name or getattr(source, "name", "the upload")
    if hasattr(source, "read"):
        return source.read(), name or getattr(source, "name", "the file")
    raise TypeError(f"cannot read an image from {type(source).__name__}: "
                    "pass a path, bytes, a file object, a PIL image or a numpy array")


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageError(f"{name} is {w}x{h} pixels ({w * h / 1e6:.0f} megapixels), more than the "
                         f"limit of {max_pixels / 1e6:.0f} megapixels: resize it first")
    if w < 1 or h < 1:
        raise ImageError(f"{name} has no pixels ({w}x{h})")


def _too_large_message(name: str, pillow_message: str, max_pixels: int) -> str:
    found = re.search(r"\((\d+) pixels\)", pillow_message)
    size = f" ({int(found.group(1)) / 1e6:.0f} megapixels)" if found else ""
    return f"{name} is too large{size}, more than the limit of {max_pixels / 1e6:.0f} megapixels: resize it first"


def _to_rgb(img: Image.Image, name: str) -> np.ndarray:
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block should not cost the photo
        pass
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _from_array(np.asarray(img), name, "RGB", None)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"))  # CMYK (Adobe inverted too), YCbCr, palette, 1-bit, L


def _from_array(arr: np.ndarray, name: str, color_order: str, max_pixels: int | None) -> np.ndarray:
    if color_order not in ("RGB", "BGR"):
        raise ValueError(f"color_order must be 'RGB' or 'BGR', not {color_order!r}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError(f"{name} has shape {arr.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    if max_pixels is not None:
        _check_size((arr.shape[1], arr.shape[0]), name, max_pixels)
    arr = _to_uint8(arr, name)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if color_order == "BGR":
        arr = arr[..., [2, 1, 0, 3][:arr.shape[2]]]
    if arr.shape[2] == 4:
        alpha = arr[..., 3:].astype(np.float32) / 255.0
        arr = (arr[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)  # on white
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray, name: str) -> np.ndarray:
    """uint8 as is; 16-bit scaled by 255/65535; floats in [0, 1] scaled by 255, others min-max stretched."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype in (np.uint16, np.int32, np.uint32, np.int64, np.int16):  # Pillow reads 16-bit PNGs as int32
        if arr.size and arr.max() > 65535:
            return _stretch(arr)
        return (np.clip(arr, 0, 65535).astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(f"{name} contains NaN or infinite values")
        if arr.size and arr.min() >= 0.0 and arr.max() <= 1.0:
            return (arr * 255.0 + 0.5).astype(np.uint8)
        return _stretch(arr)
    raise ImageError(f"{name} has pixel type {arr.dtype}, which is not an image type")


def _stretch(arr: np.ndarray) -> np.ndarray:
    arr = arr.astype(np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    return np.zeros(arr.shape, np.uint8) if hi <= lo else ((arr - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def is_video_name(name: str) -> bool:
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS

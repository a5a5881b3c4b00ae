"""Files a user might upload: a real face photo, a short video of it, and files that are not usable.

BAD_IMAGES / BAD_VIDEOS are (name, bytes, part of the expected message), shared by the API, CLI and
page tests so every surface is checked against the same cases.
"""
from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def astronaut_rgb() -> np.ndarray:
    """skimage's astronaut (Eileen Collins): a real photo with one face, 512x512 RGB."""
    from skimage import data
    return data.astronaut()


def face_photo_640x480() -> np.ndarray:
    """The astronaut resized to 480x480 and centred on a grey 640x480 canvas: one face, about 90 px wide."""
    canvas = np.full((480, 640, 3), 128, np.uint8)
    canvas[:, 80:560] = cv2.resize(astronaut_rgb(), (480, 480), interpolation=cv2.INTER_AREA)
    return canvas


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def write_face_video(path, frames: int = 12, fps: float = 10.0, size=(320, 240)) -> None:
    """A short video of the astronaut's face sliding right: every frame has one face."""
    w, h = size
    face = cv2.resize(astronaut_rgb()[20:300, 120:340], (h * 220 // 280, h))
    fourcc = "MJPG" if str(path).endswith(".avi") else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for i in range(frames):
        canvas = np.full((h, w, 3), 128, np.uint8)
        x = i * (w - face.shape[1]) // max(1, frames - 1)
        canvas[:, x:x + face.shape[1]] = face
        writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    writer.release()


def decompression_bomb_png(side: int = 30000) -> bytes:
    """A valid 1-bit side x side PNG of zeros: about 100 KB on disk, 900 megapixels decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row * 1000) for _ in range(side // 1000)) + z.compress(row * (side % 1000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def photo_jpeg(size=(320, 240)) -> bytes:
    return jpeg_bytes(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), (i * 60, 0, 0)) for i in range(4)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("CMYK", (80, 60), (0, 255, 255, 0)).save(buf, "JPEG")  # pure red in CMYK
    return buf.getvalue()


BAD_IMAGES: list[tuple[str, bytes, str]] = [
    ("notes.jpg", b"these are my holiday notes, not a photo\n" * 20, "is not an image"),
    ("cut.jpg", photo_jpeg()[:3000], "is truncated"),
    ("empty.png", b"", "is empty (0 bytes)"),
    ("bomb.png", decompression_bomb_png(), "megapixels"),
    ("animated.gif", animated_gif(), "is animated (4 frames)"),
]

def truncated_video() -> bytes:
    """The first half of a valid MP4 whose index (moov) is at the end, as an interrupted upload leaves it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "clip.mp4"
        write_face_video(path, frames=30)
        data = path.read_bytes()
    return data[:len(data) // 2]


BAD_VIDEOS: list[tuple[str, bytes, str]] = [
    ("empty.mp4", b"", "is empty (0 bytes)"),
    ("corrupt.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40, "cannot be read as a video"),
    ("cut.mp4", truncated_video(), "cannot be read as a video"),
    ("notes.webm", b"hello " * 1000, "cannot be read as a video"),
]

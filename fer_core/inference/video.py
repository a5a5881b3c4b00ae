"""Video files: checked opening, sampled frame reading, and writing annotated video browsers can play.

Reading uses OpenCV. Writing prefers H.264 in MP4 through PyAV (installed with streamlit-webrtc),
which every browser plays; without PyAV it falls back to VP8 in WebM through OpenCV.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import ImageError
from ..paths import existing_file, shown
from .images import MAX_PIXELS


@dataclass(frozen=True)
class VideoInfo:
    frames: int      # as the container states it; 0 when unknown (some WebM files)
    fps: float       # 0 when unknown
    width: int
    height: int


def open_video(path: str | os.PathLike, name: str | None = None) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened capture positioned at frame 0, or ImageError: missing, empty, unreadable, no frames."""
    name = name or shown(Path(path).name)
    path = existing_file(path, "video", error=ImageError)
    if path.stat().st_size == 0:
        raise ImageError(f"{name} is empty (0 bytes)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ImageError(f"{name} cannot be read as a video (damaged, or not mp4/avi/mov/webm)")
    info = VideoInfo(max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))), max(0.0, cap.get(cv2.CAP_PROP_FPS)),
                     int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    if info.width * info.height > MAX_PIXELS:
        cap.release()
        raise ImageError(f"{name} has {info.width}x{info.height} frames, more than "
                         f"{MAX_PIXELS / 1e6:.0f} megapixels")
    return cap, info


def video_info(path: str | os.PathLike, name: str | None = None) -> VideoInfo:
    cap, info = open_video(path, name)
    cap.release()
    return info


def iter_frames(path: str | os.PathLike, every_n: int = 1, name: str | None = None
                ) -> Iterator[tuple[int, float, np.ndarray]]:
    """(frame index, time in seconds, RGB frame) for frames 0, n, 2n... Frames between are skipped undecoded."""
    if every_n < 1:
        raise ValueError(f"every_n must be at least 1, got {every_n}")
    name = name or Path(path).name
    cap, info = open_video(path, name)
    try:
        index, yielded = 0, 0
        while True:
            if index % every_n:
                if not cap.grab():
                    break
            else:
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                time_s = index / info.fps if info.fps else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                yield index, time_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yielded += 1
            index += 1
        if yielded == 0:
            raise ImageError(f"{name} has no frames that can be decoded (damaged or empty video)")
    finally:
        cap.release()


class AnnotatedVideoWriter:
    """Write RGB frames to `path`: H.264 .mp4 via PyAV, else VP8 .webm via OpenCV. `self.path` is the file written."""

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        self.fps = max(1.0, float(fps))
        self._av = self._cv = None
        try:
            import av
            h264 = "libx264" in av.codecs_available
        except ImportError:
            h264 = False
        self.path = self.path.with_suffix(".mp4" if h264 else ".webm")
        self.mime = "video/mp4" if h264 else "video/webm"

    def write(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        rgb = rgb[:h - h % 2, :w - w % 2]  # yuv420p needs even sides
        if self._av is None and self._cv is None:
            self._open(rgb.shape[1], rgb.shape[0])
        if self._cv is not None:
            self._cv.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            return
        container, stream = self._av
        import av
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)

    def _open(self, w: int, h: int) -> None:
        if self.mime == "video/mp4":
            from fractions import Fraction

            import av
            container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
            stream = container.add_stream("libx264", rate=Fraction(round(self.fps * 1000), 1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "23"}
            self._av = (container, stream)
        else:
            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"VP80"), self.fps, (w, h))
            if not self._cv.isOpened():
                raise ImageError("OpenCV cannot write WebM (VP8) video here; install PyAV (`pip install av`)")

    def close(self) -> None:
        if self._av is not None:
            container, stream = self._av
            for packet in stream.encode():
                container.mux(packet)
            container.close()
        if self._cv is not None:
            self._cv.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

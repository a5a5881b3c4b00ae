"""Results as the Predict page and `predict` hand them over: a video analysed frame by frame with an annotated
copy, and faces as table rows (the CSV downloads)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .annotate import draw_faces
from .video import AnnotatedVideoWriter, video_info


@dataclass
class VideoAnalysis:
    frames: list[dict]         # FrameResult.to_dict() of every analysed frame
    fps: float | None          # the video's own frame rate, when it says
    annotated: Path | None     # the video with boxes and labels drawn, at the analysed frames' pace
    mime: str | None           # of the annotated file


def analyse_video(recognizer, path: str | os.PathLike, every_n: int, views: int = 1, detect: bool = True,
                  annotated_dir: str | os.PathLike | None = None, name: str | None = None,
                  progress=None) -> VideoAnalysis:
    """Every `every_n`-th frame's faces (TTA with `views` > 1); with `annotated_dir`, an annotated copy written
    there. `progress(done_fraction, text)` follows the frames. Bad videos raise ImageError naming `name`."""
    info = video_info(path, name=name)
    expected = -(-info.frames // every_n) if info.frames else 0
    writer = AnnotatedVideoWriter(Path(annotated_dir) / "annotated", fps=(info.fps or 30.0) / every_n) \
        if annotated_dir is not None else None
    frames = []
    results = recognizer.predict_video(path, every_n, tta=views > 1, views=views, detect=detect,
                                       keep_frames=writer is not None)
    if writer is None:
        frames = [_followed(f.to_dict(), len(frames), expected, info.frames, progress) for f in results]
        return VideoAnalysis(frames, info.fps, None, None)
    with writer:
        for frame in results:
            writer.write(draw_faces(frame.frame, frame.faces, copy=False))
            frames.append(_followed(frame.to_dict(), len(frames), expected, info.frames, progress))
    return VideoAnalysis(frames, info.fps, writer.path if frames else None, writer.mime)


def _followed(frame: dict, done: int, expected: int, total: int | None, progress) -> dict:
    if progress is not None:
        progress(min(1.0, (done + 1) / expected) if expected else 0.0,
                 f"Frame {frame['frame'] + 1:,}" + (f" of {total:,}" if total else ""))
    return frame


def face_rows(file: str, faces: list[dict], **extra) -> list[dict]:
    """Table rows, one per face (FaceResult.to_dict()): the file, `extra` columns, the box and every probability."""
    return [{"file": file, **extra, "face": i + 1, "x": f["box"][0], "y": f["box"][1], "w": f["box"][2],
             "h": f["box"][3], "label": f["label"], "confidence": f["confidence"], **f["probabilities"]}
            for i, f in enumerate(faces)]

"""Live webcam frames: faces detected every N frames and tracked in between, emotions smoothed per face.

`LiveProcessor.process(rgb)` is the whole frame callback minus the video-frame conversion, so it is
tested and benchmarked without Streamlit or a browser. It never raises: an error is logged, the frame
passes through unchanged, and `status().error` tells the page. Everything the page reads (status,
snapshot, history) is copied under a lock because frames arrive on another thread.

Detection is most of a frame's cost. With `detect_in_background` it runs on a thread of its own
(`BackgroundDetector`), so a frame that would have waited for the detector is classified at once with the
tracks' last boxes; the boxes catch up when the detection ends. With `full_scan_every` = N only every N-th
detection searches the whole frame, the others only around the tracked faces (a quarter of the cost), so a
new face may wait N - 1 detections to be found.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ..labels import EMOTIONS
from .annotate import draw_faces
from .faces import Face, box_iou
from .recognizer import FaceResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveSettings:
    detect_every: int = 3     # run the face detector on every N-th frame; keep the boxes in between
    smoothing: float = 0.6    # weight of the past in each face's moving average of probabilities (0: none)
    tta_views: int = 1        # 1: no test-time augmentation (the fast default)
    iou_match: float = 0.3    # a detection continues a track when their boxes overlap at least this much
    max_misses: int = 1       # detections a track may miss (detector flicker) before it is dropped
    detect_in_background: bool = False  # run the detector on its own thread (the Live page does)
    full_scan_every: int = 1  # every N-th detection searches the whole frame; the others only near the tracks


@dataclass
class Track:
    track_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray | None = None  # smoothed probabilities, None until first classified
    misses: int = 0


@dataclass(frozen=True)
class LiveFace:
    track_id: int
    box: tuple[int, int, int, int]
    label: str
    confidence: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class LiveStatus:
    faces: tuple[LiveFace, ...] = ()
    fps: float = 0.0             # processed frames per second over the last few seconds
    received_fps: float = 0.0    # frames arriving from the camera per second (the newest is processed, the rest dropped)
    ms_per_frame: float = 0.0    # processing time of one frame, averaged like fps
    frames: int = 0              # frames processed since the stream started
    last_frame_at: float | None = None   # time.monotonic() of the last frame, None before the first
    last_face_at: float | None = None    # ... of the last frame with a face
    error: str | None = None     # the latest error from the frame callback, for the page
    errors: int = 0
    batches_fps: float = 0.0     # batches of frames per second: the frames queued since the last batch, of which the
                                 # newest is processed (the pass-through passes it on as it is)


class RateMeter:
    """Frames per second over a sliding window. An event may count several frames (a queued batch) and carry the
    seconds spent on it; the rate is measured up to `now`, so a stalled stream falls to 0."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self._events: deque[tuple[float, int, float]] = deque()  # (time, frames, seconds spent)

    def add(self, time_s: float, frames: int = 1, spent: float = 0.0) -> None:
        self._events.append((time_s, frames, spent))
        while self._events and self._events[0][0] < time_s - self.window_s:
            self._events.popleft()

    def rate(self, now: float | None = None) -> float:
        recent = [e for e in self._events if now is None or e[0] >= now - self.window_s]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        frames = sum(n for _, n, _ in recent) - recent[0][1]  # the first event marks the start
        return frames / (recent[-1][0] - recent[0][0])

    def ms_per_event(self) -> float:
        return 1000 * sum(s for _, _, s in self._events) / len(self._events) if self._events else 0.0


class BackgroundDetector:
    """Detects faces on a thread of its own, one frame at a time: a frame offered while it is busy is declined,
    so it never builds a backlog. `collect()` hands over the newest finished detection once (or raises the
    error it ended with)."""

    def __init__(self):
        self._cond = threading.Condition()
        self._job: tuple[np.ndarray, object, int] | None = None   # (frame, detect function, generation)
        self._result: tuple[list[Face] | None, Exception | None] | None = None
        self._busy = False
        self._generation = 0
        self._thread: threading.Thread | None = None

    def offer(self, rgb: np.ndarray, detect) -> bool:
        """Start detecting `rgb` with `detect(rgb)` unless a detection is under way; True if it started."""
        with self._cond:
            if self._busy:
                return False
            self._busy = True
            self._job = (rgb, detect, self._generation)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="live-face-detector", daemon=True)
                self._thread.start()
            self._cond.notify()
            return True

    def collect(self) -> list[Face] | None:
        """The faces of the detection that ended since the last call, or None."""
        with self._cond:
            result, self._result = self._result, None
        if result is None:
            return None
        faces, error = result
        if error is not None:
            raise error
        return faces

    def discard(self) -> None:
        """Forget a detection under way or not yet collected (a new stream starts)."""
        with self._cond:
            self._generation += 1
            self._result = None

    def _run(self) -> None:
        _yield_cpu()
        while True:
            with self._cond:
                while self._job is None:
                    self._cond.wait()
                (rgb, detect, generation), self._job = self._job, None
            try:
                result = (detect(rgb), None)
            except Exception as exc:  # noqa: BLE001 - handed to the frame callback, which reports it
                result = (None, exc)
            with self._cond:
                if generation == self._generation:
                    self._result = result
                self._busy = False


def _yield_cpu(niceness: int = 10) -> None:
    """Lower the calling thread's CPU priority on Linux, which sets it per thread: a detection may finish a
    little later, while the frame callback and the video codecs sharing the cores must not wait."""
    if not sys.platform.startswith("linux"):  # elsewhere the call would lower the whole process
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except OSError:  # not allowed: run at normal priority
        pass


class LiveProcessor:
    """Per-stream state: tracks, smoothing, FPS, the last annotated frame and the emotion history.

    `recognizer` needs `detector.detect(rgb, near=None) -> list[Face]` and `classify(rgb, faces, views)`, as
    fer_core.inference.recognizer.EmotionRecognizer has.
    """

    def __init__(self, recognizer, settings: LiveSettings | None = None, history_every_s: float = 0.25,
                 history_len: int = 4800):
        self.recognizer = recognizer
        self.settings = settings or LiveSettings()
        self.history_every_s = history_every_s
        self._history: deque[dict] = deque(maxlen=history_len)
        self._lock = threading.Lock()
        self._background = BackgroundDetector()
        self.reset()

    def reset(self) -> None:
        """Forget everything from the previous stream (called when a new one starts)."""
        with self._lock:
            self._tracks: list[Track] = []
            self._next_id = 1
            self._frame_index = 0
            self._detections = 0
            self._offered_at = -1_000_000  # frame index of the last frame handed to the background detector
            self._started_at: float | None = None
            self._last_history_at = -float("inf")
            self._history.clear()
            self._fps = RateMeter()
            self._received = RateMeter()
            self._batches = RateMeter()
            self._status = LiveStatus()
            self._snapshot: np.ndarray | None = None
            self._background.discard()

    def update(self, recognizer=None, settings: LiveSettings | None = None) -> None:
        """New controls from the page, taking effect at the next frame (the stream keeps running)."""
        with self._lock:
            if recognizer is not None and recognizer is not self.recognizer:
                self.recognizer = recognizer
                for track in self._tracks:
                    track.probs = None  # another model's probabilities are not comparable
            if settings is not None:
                self.settings = settings

    # -- the frame callback ------------------------------------------------------------------------

    def received(self, n: int = 1) -> None:
        """Count frames that arrived from the camera. The page processes only the newest of the frames that
        queued up while the previous one was processed, so a slow frame never builds a backlog."""
        with self._lock:
            now = time.monotonic()
            self._received.add(now, n)
            self._batches.add(now, 1)
            self._status = replace(self._status, received_fps=self._received.rate(), batches_fps=self._batches.rate())

    def process(self, rgb: np.ndarray) -> np.ndarray:
        """The annotated frame; on any error the frame unchanged (and the error recorded)."""
        start = time.monotonic()
        try:
            with self._lock:
                faces = self._step(rgb)
                annotated = draw_faces(rgb, faces)
                self._finish(start, faces, annotated)
            return annotated
        except Exception as exc:  # noqa: BLE001 - an error must never end the stream
            log.exception("live frame processing failed")
            with self._lock:
                self._status = replace(self._status, error=f"{type(exc).__name__}: {exc}",
                                       errors=self._status.errors + 1)
            return rgb

    def _step(self, rgb: np.ndarray) -> list[LiveFace]:
        s = self.settings
        every = max(1, s.detect_every)
        if s.detect_in_background:
            found = self._background.collect()
            if found is not None:
                self._match(found)
            # every N-th frame, or the first frame after that on which the detector is free again
            if self._frame_index - self._offered_at >= every and self._background.offer(rgb, self._next_detection()):
                self._offered_at = self._frame_index
                self._detections += 1
        elif self._frame_index % every == 0:
            self._match(self._next_detection()(rgb))
            self._detections += 1
        self._frame_index += 1
        if not self._tracks:
            return []
        results: list[FaceResult] = self.recognizer.classify(
            rgb, [Face(t.box) for t in self._tracks], s.tta_views)
        faces = []
        for track, result in zip(self._tracks, results):
            p = np.array([result.probabilities[e] for e in EMOTIONS], dtype=np.float64)
            track.probs = p if track.probs is None else s.smoothing * track.probs + (1 - s.smoothing) * p
            best = int(track.probs.argmax())
            faces.append(LiveFace(track.track_id, track.box, EMOTIONS[best], float(track.probs[best]),
                                  {e: float(v) for e, v in zip(EMOTIONS, track.probs)}))
        return faces

    def _next_detection(self):
        """detect(rgb) for the next detection: the whole frame every `full_scan_every`-th time and whenever no face
        is tracked, otherwise only the regions around the tracked faces (new faces wait for the next full scan)."""
        detect = self.recognizer.detector.detect
        if not self._tracks or self._detections % max(1, self.settings.full_scan_every) == 0:
            return detect
        near = [t.box for t in self._tracks]
        return lambda rgb: detect(rgb, near=near)

    def _match(self, detected: list[Face]) -> None:
        """Continue tracks with the detections that overlap them best; new faces get new ids."""
        s = self.settings
        pairs = sorted(((box_iou(t.box, f.box), i, j) for i, t in enumerate(self._tracks)
                        for j, f in enumerate(detected)), reverse=True)
        used_tracks, used_faces = set(), set()
        for iou, i, j in pairs:
            if iou < s.iou_match:
                break
            if i in used_tracks or j in used_faces:
                continue
            used_tracks.add(i)
            used_faces.add(j)
            self._tracks[i].box, self._tracks[i].misses = detected[j].box, 0
        kept = []
        for i, track in enumerate(self._tracks):
            if i not in used_tracks:
                track.misses += 1
            if track.misses <= s.max_misses:
                kept.append(track)
        for j, face in enumerate(detected):
            if j not in used_faces:
                kept.append(Track(self._next_id, face.box))
                self._next_id += 1
        self._tracks = sorted(kept, key=lambda t: -t.box[2] * t.box[3])  # largest first, as the detector

    def _finish(self, start: float, faces: list[LiveFace], annotated: np.ndarray) -> None:
        now = time.monotonic()
        if self._started_at is None:
            self._started_at = start
        self._fps.add(now, spent=now - start)
        if faces and now - self._last_history_at >= self.history_every_s:
            self._last_history_at = now
            t = round(now - self._started_at, 3)
            for f in faces:
                self._history.append({"time_s": t, "face": f.track_id, "label": f.label, **f.probabilities})
        self._snapshot = annotated
        old = self._status
        self._status = replace(old, faces=tuple(faces), fps=self._fps.rate(now), ms_per_frame=self._fps.ms_per_event(),
                               frames=old.frames + 1, last_frame_at=now, last_face_at=now if faces else old.last_face_at)

    # -- what the page reads -----------------------------------------------------------------------

    def status(self) -> LiveStatus:
        with self._lock:
            return self._status

    def snapshot(self) -> np.ndarray | None:
        """The last annotated frame (RGB), or None before the first frame."""
        with self._lock:
            return None if self._snapshot is None else self._snapshot.copy()

    def history(self) -> list[dict]:
        """Rows of time_s (since the stream started), face id, label and every emotion's probability."""
        with self._lock:
            return list(self._history)


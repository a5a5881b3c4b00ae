"""The live frame processing on synthetic frames: boxes, labels, tracking, smoothing, FPS and the error path."""
from __future__ import annotations

import logging
import os
import sys
import threading
import time

import numpy as np
import pytest

from dashboard.live.chart import history_figure
from fer_core.inference.faces import Face, box_iou
from fer_core.inference.live import BackgroundDetector, LiveProcessor, LiveSettings, RateMeter
from fer_core.inference.recognizer import FaceResult
from fer_core.labels import EMOTIONS


def one_hot(label: str, confidence: float = 0.9) -> dict[str, float]:
    rest = (1 - confidence) / (len(EMOTIONS) - 1)
    return {e: confidence if e == label else rest for e in EMOTIONS}


class FakeDetector:
    def __init__(self, boxes):
        self.boxes = boxes  # what the next detect() returns
        self.calls = 0
        self.searched_near = []  # per call: the boxes searched near, None for the whole frame

    def detect(self, rgb, near=None):
        self.calls += 1
        self.searched_near.append(near)
        return [Face(b) for b in self.boxes]


class FakeRecognizer:
    """Scripted emotions: `labels` is consumed one per classify() call (the last one repeats)."""

    def __init__(self, boxes, labels=("happy",)):
        self.detector = FakeDetector(boxes)
        self.labels = list(labels)
        self.views = []

    def classify(self, rgb, faces, views=1):
        self.views.append(views)
        label = self.labels.pop(0) if len(self.labels) > 1 else self.labels[0]
        return [FaceResult(f.box, label, 0.9, one_hot(label)) for f in faces]


def frame() -> np.ndarray:
    return np.full((120, 160, 3), 128, np.uint8)


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_draws_a_box_and_reports_the_label():
    processor = LiveProcessor(FakeRecognizer([(40, 30, 50, 50)]), LiveSettings(smoothing=0.0))
    out = processor.process(frame())
    assert out.shape == (120, 160, 3) and not np.array_equal(out, frame())  # something was drawn
    assert (out[30, 40:90] != 128).any()  # on the box's top edge
    status = processor.status()
    assert [(f.label, f.box) for f in status.faces] == [("happy", (40, 30, 50, 50))]
    assert status.faces[0].confidence == pytest.approx(0.9)
    assert status.frames == 1 and status.error is None
    assert np.array_equal(processor.snapshot(), out)


def test_no_face_passes_the_frame_through():
    processor = LiveProcessor(FakeRecognizer([]))
    out = processor.process(frame())
    assert np.array_equal(out, frame())
    assert processor.status().faces == () and processor.status().last_face_at is None


def test_detector_runs_every_n_frames_and_boxes_are_kept_between():
    rec = FakeRecognizer([(40, 30, 50, 50)])
    processor = LiveProcessor(rec, LiveSettings(detect_every=3))
    for _ in range(7):
        processor.process(frame())
        assert len(processor.status().faces) == 1
    assert rec.detector.calls == 3  # frames 0, 3 and 6


def test_full_scans_every_n_detections_and_searches_near_the_tracks_in_between():
    recognizer = FakeRecognizer([(10, 10, 40, 40)])
    processor = LiveProcessor(recognizer, LiveSettings(detect_every=1, full_scan_every=3))
    for _ in range(7):
        processor.process(frame())
    near = [(10, 10, 40, 40)]
    assert recognizer.detector.searched_near == [None, near, near, None, near, near, None]


def test_without_tracks_every_detection_is_a_full_scan():
    recognizer = FakeRecognizer([])
    processor = LiveProcessor(recognizer, LiveSettings(detect_every=1, full_scan_every=3))
    for _ in range(4):
        processor.process(frame())
    assert recognizer.detector.searched_near == [None] * 4


def test_tracks_keep_their_id_while_the_face_moves_and_new_faces_get_new_ids():
    rec = FakeRecognizer([(40, 30, 50, 50)])
    processor = LiveProcessor(rec, LiveSettings(detect_every=1, max_misses=0))
    processor.process(frame())
    rec.detector.boxes = [(45, 32, 50, 50), (0, 0, 20, 20)]  # moved a little; a second, smaller face
    processor.process(frame())
    faces = processor.status().faces
    assert [(f.track_id, f.box) for f in faces] == [(1, (45, 32, 50, 50)), (2, (0, 0, 20, 20))]
    rec.detector.boxes = [(0, 0, 20, 20)]  # the first face left
    processor.process(frame())
    assert [f.track_id for f in processor.status().faces] == [2]


def test_a_missed_detection_keeps_the_track_until_max_misses():
    rec = FakeRecognizer([(40, 30, 50, 50)])
    processor = LiveProcessor(rec, LiveSettings(detect_every=1, max_misses=1))
    processor.process(frame())
    rec.detector.boxes = []
    processor.process(frame())
    assert [f.track_id for f in processor.status().faces] == [1]  # detector flicker: still shown
    processor.process(frame())
    assert processor.status().faces == ()


def test_smoothing_stops_a_single_frame_flicker():
    labels = ["happy"] * 5 + ["sad"] + ["happy"] * 5
    smooth = LiveProcessor(FakeRecognizer([(40, 30, 50, 50)], labels), LiveSettings(smoothing=0.7))
    raw = LiveProcessor(FakeRecognizer([(40, 30, 50, 50)], labels), LiveSettings(smoothing=0.0))
    smooth_labels, raw_labels = [], []
    for _ in labels:
        smooth.process(frame())
        raw.process(frame())
        smooth_labels.append(smooth.status().faces[0].label)
        raw_labels.append(raw.status().faces[0].label)
    assert "sad" in raw_labels
    assert set(smooth_labels) == {"happy"}
    sad_frame = smooth.status  # the smoothed probabilities still sum to 1
    assert sum(sad_frame().faces[0].probabilities.values()) == pytest.approx(1.0)


class GatedDetector(FakeDetector):
    """A detector that works until the test lets it finish: `release()` ends the detection under way."""

    def __init__(self, boxes):
        super().__init__(boxes)
        self.gate = threading.Event()
        self.done = threading.Event()

    def detect(self, rgb, near=None):
        self.gate.wait(timeout=10)
        self.gate.clear()
        self.done.set()
        if isinstance(self.boxes, Exception):
            raise self.boxes
        return super().detect(rgb, near)

    def release(self):
        self.done.clear()
        self.gate.set()
        assert self.done.wait(timeout=10)
        time.sleep(0.2)  # the worker stores its result just after detect() returns


def background_processor(boxes, **settings):
    rec = FakeRecognizer(boxes)
    rec.detector = GatedDetector(boxes)
    return rec, LiveProcessor(rec, LiveSettings(detect_in_background=True, smoothing=0.0, **settings))


def test_background_detection_never_holds_a_frame_back():
    rec, processor = background_processor([(40, 30, 50, 50)], detect_every=1)
    for _ in range(5):  # the detector is busy with the first frame: the others pass at once, declined by it
        processor.process(frame())
    assert processor.status().frames == 5 and processor.status().faces == ()
    rec.detector.release()
    processor.process(frame())  # collects the finished detection, classifies, and offers this frame
    assert [f.box for f in processor.status().faces] == [(40, 30, 50, 50)]
    rec.detector.release()
    assert rec.detector.calls == 2  # one detection at a time, never a backlog


def test_background_detections_declined_while_busy_do_not_count_towards_the_next_full_scan():
    rec, processor = background_processor([(40, 30, 50, 50)], detect_every=1, full_scan_every=2)
    for _ in range(3):  # the first (full) detection is under way: these frames are declined
        processor.process(frame())
    rec.detector.release()
    processor.process(frame())  # collects the face; the second detection searches near it
    rec.detector.release()
    processor.process(frame())  # the third is a full scan again
    rec.detector.release()
    assert rec.detector.searched_near == [None, [(40, 30, 50, 50)], None]


def test_the_background_detector_runs_at_a_lower_cpu_priority():
    if not sys.platform.startswith("linux"):
        pytest.skip("thread priorities are per thread on Linux only")
    niceness = []

    def detect(rgb):
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return []

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    background = BackgroundDetector()
    assert background.offer(frame(), detect)
    deadline = time.monotonic() + 10
    while background.collect() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert niceness and niceness[0] >= 10
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before  # only the detector's thread


def test_background_detection_errors_reach_the_page_and_reset_forgets_a_detection():
    rec, processor = background_processor(RuntimeError("detector exploded"))
    processor.process(frame())
    rec.detector.release()
    out = processor.process(frame())
    assert np.array_equal(out, frame()) and processor.status().error == "RuntimeError: detector exploded"
    rec.detector.boxes = [(40, 30, 50, 50)]
    processor.reset()
    processor.process(frame())       # offered; the stream ends before the detection does
    processor.reset()
    rec.detector.release()
    processor.process(frame())
    assert processor.status().faces == ()  # the old stream's detection was dropped


def test_tta_setting_reaches_the_classifier():
    rec = FakeRecognizer([(40, 30, 50, 50)])
    processor = LiveProcessor(rec)
    processor.process(frame())
    processor.update(settings=LiveSettings(tta_views=4))
    processor.process(frame())
    assert rec.views == [1, 4]


def test_an_error_passes_the_frame_through_and_is_reported(caplog):
    rec = FakeRecognizer([(40, 30, 50, 50)])

    def broken(rgb, faces, views=1):
        raise RuntimeError("model exploded")
    rec.classify = broken
    processor = LiveProcessor(rec)
    with caplog.at_level(logging.ERROR, logger="fer_core.inference.live"):
        out = processor.process(frame())
        out2 = processor.process(frame())
    assert np.array_equal(out, frame()) and np.array_equal(out2, frame())
    status = processor.status()
    assert status.error == "RuntimeError: model exploded" and status.errors == 2
    assert "model exploded" in caplog.text
    rec.classify = FakeRecognizer([]).classify  # recovers: the next frame is processed again
    processor.process(frame())
    assert processor.status().faces and processor.status().frames == 1


def test_history_and_reset():
    processor = LiveProcessor(FakeRecognizer([(40, 30, 50, 50)]), history_every_s=0.0)
    for _ in range(3):
        processor.process(frame())
    rows = processor.history()
    assert len(rows) == 3 and rows[0]["face"] == 1 and rows[0]["label"] == "happy"
    assert set(EMOTIONS) <= set(rows[0]) and rows[-1]["time_s"] >= rows[0]["time_s"] >= 0
    processor.reset()
    assert processor.history() == [] and processor.status().frames == 0 and processor.snapshot() is None


def test_history_chart_stays_small_for_a_long_stream():
    assert history_figure([]) is None
    happy = dict.fromkeys(EMOTIONS, 0.0) | {"happy": 1.0}
    sad = dict.fromkeys(EMOTIONS, 0.0) | {"sad": 1.0}
    rows = [{"time_s": i * 0.25, "face": 1, "label": "happy", **happy} for i in range(2000)]
    rows += [{"time_s": i * 0.25, "face": 2, "label": "sad", **sad} for i in range(2000)]  # a second face: not drawn
    fig = history_figure(rows, max_points=100)
    lines = {trace.name: trace for trace in fig.data}
    assert set(lines) == set(EMOTIONS) and all(len(trace.x) <= 100 for trace in fig.data)
    assert min(lines["happy"].y) == max(lines["happy"].y) == 1.0 and max(lines["sad"].y) == 0.0
    assert lines["happy"].x[0] < 5 and lines["happy"].x[-1] > 495  # the whole stream (0 to 500 s), in 5 s bins
    short = history_figure(rows[:10])
    assert len(short.data[0].x) == 10  # a short stream is drawn as it is


def test_fps_meter():
    meter = RateMeter(window_s=2.0)
    for i in range(21):
        meter.add(10 + i * 0.05, spent=0.01)  # 20 frames per second, 10 ms each
    assert meter.rate(11.0) == pytest.approx(20.0)
    assert meter.ms_per_event() == pytest.approx(10.0)
    assert meter.rate(20.0) == 0.0  # nothing recent: the stream stalled


def test_rate_meter_counts_queued_batches_of_frames():
    meter = RateMeter(window_s=2.0)
    for i in range(11):
        meter.add(10 + i * 0.1, 3)  # batches of 3 frames every 0.1 s: 30 frames per second
    assert meter.rate() == pytest.approx(30.0)
    assert RateMeter().rate() == 0.0


def test_received_and_processed_rates_are_both_reported(monkeypatch):
    import fer_core.inference.live as live
    clock = iter(np.arange(100.0, 200.0, 0.01))
    monkeypatch.setattr(live.time, "monotonic", lambda: float(next(clock)))
    processor = LiveProcessor(FakeRecognizer([(40, 30, 50, 50)]))
    for _ in range(20):  # three frames arrive per processed one: the newest is processed, two are dropped
        processor.received(3)
        processor.process(frame())
    status = processor.status()
    assert status.received_fps > 2 * status.fps > 0 and status.frames == 20
    assert status.batches_fps == pytest.approx(status.received_fps / 3)


def test_real_model_on_a_real_face(tiny_checkpoint):
    from fer_core.bench.sample_faces import astronaut_clip
    from fer_core.inference.recognizer import EmotionRecognizer
    processor = LiveProcessor(EmotionRecognizer.load(tiny_checkpoint), LiveSettings(detect_every=2))
    for rgb in astronaut_clip(4):
        out = processor.process(rgb)
    status = processor.status()
    assert status.error is None and len(status.faces) == 1 and status.faces[0].label in EMOTIONS
    assert out.shape == (480, 640, 3) and status.fps > 0


def test_streamlit_does_not_collect_garbage_after_every_rerun():
    """Live's status fragment reruns twice a second; Streamlit's default full gc.collect() after each rerun holds
    the GIL for about 120 ms with torch loaded and cost Live a quarter of its frames (docs/speed.md)."""
    import tomllib
    from pathlib import Path
    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False

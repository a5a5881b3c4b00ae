"""EmotionRecognizer: the Python API on real photos, FER crops, bad files and videos; drawing and video output."""
from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_core import EmotionRecognizer
from fer_core.errors import CheckpointError, ImageError
from fer_core.inference.annotate import draw_faces
from fer_core.inference.faces import YUNET_ENV
from fer_core.inference.video import AnnotatedVideoWriter, iter_frames
from fer_core.labels import EMOTIONS
from tests.sample_files import BAD_IMAGES, BAD_VIDEOS, astronaut_rgb, write_face_video


@pytest.fixture
def rec(tiny_checkpoint, monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    return EmotionRecognizer.load(tiny_checkpoint)


def test_load_without_a_default_model_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path))
    with pytest.raises(CheckpointError, match="default model is missing") as err:
        EmotionRecognizer.load()
    assert "fer_core ship" in str(err.value)


def test_load_a_damaged_checkpoint_is_a_checkpoint_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        EmotionRecognizer.load(bad)


@pytest.mark.parametrize("tta", [True, False])
def test_real_photo_gives_one_face_with_probabilities_summing_to_one(rec, tta):
    faces = rec.predict(astronaut_rgb(), tta=tta)
    assert len(faces) == 1
    face = faces[0]
    assert list(face.probabilities) == list(EMOTIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.label == max(face.probabilities, key=face.probabilities.get)
    assert face.confidence == face.probabilities[face.label]
    x, y, w, h = face.box
    assert x <= 225 <= x + w and y <= 120 <= y + h


def test_path_pil_and_bgr_array_give_the_same_answer(rec, tmp_path):
    rgb = astronaut_rgb()
    path = tmp_path / "astronaut.png"
    Image.fromarray(rgb).save(path)
    expected = rec.predict(rgb)[0].probabilities
    for source, order in ((path, "RGB"), (Image.open(path), "RGB"), (rgb[..., ::-1].copy(), "BGR")):
        got = rec.predict(source, color_order=order)[0].probabilities
        assert got == pytest.approx(expected, abs=1e-5)


def test_no_detect_treats_the_whole_image_as_one_face(rec):
    crop = cv2.cvtColor(cv2.resize(astronaut_rgb()[40:200, 150:310], (48, 48)), cv2.COLOR_RGB2GRAY)
    faces = rec.predict(crop, detect=False)
    assert len(faces) == 1 and faces[0].box == (0, 0, 48, 48)


def test_photo_without_a_face_gives_an_empty_list(rec):
    assert rec.predict(np.full((480, 640, 3), 90, np.uint8)) == []


@pytest.mark.parametrize("name, data, message", BAD_IMAGES, ids=[b[0] for b in BAD_IMAGES])
def test_bad_files_raise_image_error(rec, tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError, match=re.escape(message)):
        rec.predict(path)


def test_views_out_of_range_is_a_value_error(rec):
    with pytest.raises(ValueError, match="between 1 and"):
        rec.predict(astronaut_rgb(), tta=True, views=99)


def test_results_serialise_to_json(rec):
    payload = json.loads(json.dumps([f.to_dict() for f in rec.predict(astronaut_rgb())]))
    assert set(payload[0]) == {"box", "label", "confidence", "probabilities", "face_score", "angle"}
    assert len(payload[0]["box"]) == 4


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_video_gives_one_result_per_sampled_frame(rec, tmp_path, suffix):
    path = tmp_path / f"clip{suffix}"
    write_face_video(path, frames=12, fps=10)
    results = list(rec.predict_video(path, every_n=3))
    assert [r.index for r in results] == [0, 3, 6, 9]
    assert [r.time_s for r in results] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert all(len(r.faces) == 1 for r in results)
    assert results[0].frame is None
    assert json.dumps([r.to_dict() for r in results])


@pytest.mark.parametrize("name, data, message", BAD_VIDEOS, ids=[b[0] for b in BAD_VIDEOS])
def test_bad_videos_raise_image_error(rec, tmp_path, name, data, message):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageError, match=re.escape(message)):
        list(rec.predict_video(path))


def test_a_still_image_named_like_a_video_is_a_one_frame_video(rec, tmp_path):
    path = tmp_path / "photo.mp4"
    Image.fromarray(astronaut_rgb()).save(path, "PNG")  # FFmpeg reads it as a single frame
    results = list(rec.predict_video(path))
    assert len(results) == 1 and len(results[0].faces) == 1


def test_draw_faces_marks_the_box_and_keeps_the_input(rec):
    rgb = astronaut_rgb()
    faces = rec.predict(rgb)
    drawn = draw_faces(rgb, faces)
    assert drawn.shape == rgb.shape and not np.array_equal(drawn, rgb)
    assert np.array_equal(rgb, astronaut_rgb())


def test_annotated_video_is_written_and_readable(rec, tmp_path):
    source = tmp_path / "clip.mp4"
    write_face_video(source, frames=8)
    with AnnotatedVideoWriter(tmp_path / "annotated", fps=5) as writer:
        for frame in rec.predict_video(source, every_n=2, keep_frames=True):
            writer.write(draw_faces(frame.frame, frame.faces))
    assert writer.path.suffix in (".mp4", ".webm") and writer.path.stat().st_size > 0
    assert len(list(iter_frames(writer.path))) == 4


def test_a_saved_ensemble_loads_and_predicts(tiny_checkpoint, tmp_path):
    from dashboard.shared.model_picker import model_choices
    from fer_core.cards.ensembles import save_ensemble
    members = [{"name": f"m{i}", "checkpoint": str(tiny_checkpoint)} for i in range(2)]
    card = save_ensemble("pair", members, metrics={}, tta_views=10, models_dir=tmp_path)
    faces = EmotionRecognizer.load(card).predict(astronaut_rgb())
    assert len(faces) == 1 and sum(faces[0].probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert ("Ensemble: pair", card) in model_choices(tmp_path, tmp_path / "runs")

"""Face detection (Haar offline, YuNet when configured) and the 48x48 crops the models see."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from fer_core.errors import FERError
from fer_core.inference.faces import YUNET_ENV, FaceDetector, box_iou, crop_face, whole_image_face
from tests.conftest import YUNET_ONNX
from tests.sample_files import astronaut_rgb, face_photo_640x480

requires_yunet = pytest.mark.skipif(not YUNET_ONNX.exists(), reason=f"YuNet model not at {YUNET_ONNX}")


def inside(box, point) -> bool:
    x, y, w, h = box
    return x <= point[0] <= x + w and y <= point[1] <= y + h


ASTRONAUT_FACE_CENTRE = (225, 120)  # between the eyes, in the 512x512 photo


def test_haar_finds_the_one_face_in_a_real_photo(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    detector = FaceDetector()
    assert detector.backend == "haar"
    faces = detector.detect(astronaut_rgb())
    assert len(faces) == 1
    assert inside(faces[0].box, ASTRONAUT_FACE_CENTRE)
    assert faces[0].score is None


@pytest.mark.parametrize("side", [200, 640, 1600])
def test_boxes_are_in_full_image_pixels_whatever_the_size(side, monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    faces = FaceDetector().detect(cv2.resize(astronaut_rgb(), (side, side)))
    assert len(faces) == 1
    assert inside(faces[0].box, (ASTRONAUT_FACE_CENTRE[0] * side / 512, ASTRONAUT_FACE_CENTRE[1] * side / 512))


def test_no_face_in_photos_without_people(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    detector = FaceDetector()
    assert detector.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert detector.detect(data.coffee()) == []


@requires_yunet
def test_yunet_is_used_when_its_file_is_given():
    detector = FaceDetector(YUNET_ONNX)
    assert detector.backend == "yunet"
    faces = detector.detect(face_photo_640x480())
    assert len(faces) == 1 and 0.5 < faces[0].score <= 1.0
    assert inside(faces[0].box, (80 + ASTRONAUT_FACE_CENTRE[0] * 480 / 512, ASTRONAUT_FACE_CENTRE[1] * 480 / 512))


@requires_yunet
def test_yunet_path_from_the_environment(monkeypatch):
    monkeypatch.setenv(YUNET_ENV, str(YUNET_ONNX))
    assert FaceDetector().backend == "yunet"


def test_bad_yunet_path_is_a_clear_error(tmp_path):
    with pytest.raises(FERError, match="YuNet model not found"):
        FaceDetector(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    with pytest.raises(FERError, match="not a YuNet model"):
        FaceDetector(junk)


def test_crop_is_48x48_and_pads_faces_at_the_edge():
    gray = np.zeros((100, 100), np.uint8)
    gray[:50, :50] = 200
    crop = crop_face(gray, (0, 0, 50, 50))  # the margin reaches outside the image
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop[24, 24] == 200


def test_whole_image_is_one_face_without_margin():
    gray = (np.arange(48 * 48) % 256).astype(np.uint8).reshape(48, 48)
    face = whole_image_face(np.zeros((48, 48, 3), np.uint8))
    assert face.box == (0, 0, 48, 48)
    assert np.array_equal(crop_face(gray, face.box), gray)  # a 48x48 FER crop reaches the model unchanged


def test_search_near_a_tracked_face_finds_it_and_only_near_it(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    detector = FaceDetector()
    photo = astronaut_rgb()
    (face,) = detector.detect(photo)
    (near,) = detector.detect(photo, near=[face.box])
    assert box_iou(near.box, face.box) > 0.7
    x, y, w, h = face.box
    elsewhere = (0 if x > photo.shape[1] / 2 else photo.shape[1] - w, y, w, h)  # the same size, far from the face
    assert detector.detect(photo, near=[elsewhere]) == []


def test_overlapping_regions_report_a_face_once(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    detector = FaceDetector()
    photo = astronaut_rgb()
    (face,) = detector.detect(photo)
    x, y, w, h = face.box
    assert len(detector.detect(photo, near=[face.box, (x + w // 8, y, w, h)])) == 1


def test_a_tracked_box_outside_the_frame_finds_nothing_instead_of_failing(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)
    small = cv2.resize(astronaut_rgb(), (320, 240))  # the camera's resolution dropped since the box was found
    assert FaceDetector().detect(small, near=[(400, 300, 100, 100)]) == []

"""Face detection (Haar offline, YuNet when configured) and the 48x48 crops the models see."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from fer_core.errors import FERError
from fer_core.inference.faces import YUNET_ENV, FaceDetector, box_iou, whole_image_face
from fer_core.inference.framing import crop_face
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


# ----------------------------------------------------------------------------- framing and alignment

def test_the_crop_is_framed_as_fer2013_around_the_box():
    from fer_core.inference.framing import BOX_SCALE, crop_region
    x0, y0, side = crop_region((100, 120, 200, 160), (1000, 1000))
    assert side == round(200 / BOX_SCALE) and (x0 + side / 2, y0 + side / 2) == pytest.approx((200, 200), abs=1)


def _two_eyes(left: tuple[int, int], right: tuple[int, int]) -> np.ndarray:
    gray = np.full((400, 400), 200, np.uint8)
    for centre in (left, right):
        cv2.circle(gray, centre, 12, 0, -1)
    return gray


def _dark_rows(crop: np.ndarray) -> list[float]:
    """The row of the darkest blob in each half of a crop."""
    rows = []
    for half in (crop[:, :24], crop[:, 24:]):
        ys, _ = np.nonzero(half < 100)
        rows.append(ys.mean())
    return rows


def test_levelling_turns_known_eyes_onto_one_row():
    from fer_core.inference.framing import crop_face, eyes_angle
    left, right = (150, 180), (250, 220)  # the right eye 40 px lower: a tilt of atan(40/100) = 21.8 degrees
    angle = eyes_angle(left, right)
    assert angle == pytest.approx(21.8, abs=0.1)
    gray = _two_eyes(left, right)
    box = (100, 100, 200, 200)
    tilted, levelled = _dark_rows(crop_face(gray, box)), _dark_rows(crop_face(gray, box, angle=angle))
    assert tilted[1] - tilted[0] > 8 and abs(levelled[1] - levelled[0]) < 1
    assert eyes_angle((150, 200), (250, 203)) == 0.0  # under MIN_ANGLE: a frontal face is not turned
    assert eyes_angle((150, 100), (250, 300)) == 0.0  # beyond MAX_ANGLE: not a pair of eyes


def test_a_tilted_face_is_found_and_levelled():
    photo = astronaut_rgb()
    h, w = photo.shape[:2]
    turned = cv2.warpAffine(photo, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h),
                            borderMode=cv2.BORDER_REPLICATE)
    detector = FaceDetector()
    assert detector.detect(turned) == []  # the plain scan (Live, video) misses a head turned 25 degrees
    (face,) = detector.detect(turned, thorough=True)
    assert -32 <= face.angle <= -12  # turning it back by about 25 degrees levels it


def test_the_thorough_search_finds_cut_and_small_faces_and_no_face_in_a_cup():
    import skimage.data
    photo = astronaut_rgb()
    detector = FaceDetector()
    (face,) = detector.detect(photo)
    x, y, fw, fh = face.box
    tight = np.ascontiguousarray(photo[y + fh // 6:y + fh - fh // 8, x + fw // 10:x + fw - fw // 10])  # brows, chin cut
    small = cv2.resize(photo, (120, 120), interpolation=cv2.INTER_AREA)
    for hard in (tight, small):
        assert detector.detect(hard, thorough=True), hard.shape
    assert detector.detect(np.ascontiguousarray(skimage.data.coffee()), thorough=True) == []


def test_a_heat_map_of_a_levelled_face_is_turned_back_onto_the_photo():
    from fer_core.inference.annotate import draw_saliency
    from fer_core.inference.framing import crop_face, crop_region
    from fer_core.inference.recognizer import FaceResult
    gray = _two_eyes((150, 180), (250, 220))
    rgb = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    box, angle = (100, 100, 200, 200), 21.8
    side = crop_region(box, gray.shape)[2]
    levelled = crop_face(gray, box, size=side, angle=angle)
    saliency = (levelled < 100).astype(np.float32)  # the map marks the eyes as the network saw them, levelled
    face = FaceResult(box, "happy", 0.9, {}, angle=angle, saliency={"happy": saliency})
    drawn = draw_saliency(rgb, [face])
    red = drawn[..., 0].astype(int) - drawn[..., 2].astype(int)  # JET: red where the map is high, blue where low
    for x, y in ((150, 180), (250, 220)):  # the eyes where they are in the photo
        assert red[y, x] > 40, (x, y)
    assert red[200, 200] < 0 and red[180, 250] < 0  # between the eyes, and where a map left unturned would put one


def test_faces_found_by_a_retry_are_boxed_where_they_are_in_the_photo():
    photo = astronaut_rgb()
    detector = FaceDetector()
    (face,) = detector.detect(photo)
    x, y, fw, fh = face.box
    x0, y0 = x + fw // 10, y + fh // 6
    tight = np.ascontiguousarray(photo[y0:y + fh - fh // 8, x0:x + fw - fw // 10])
    (found,) = detector.detect(tight, thorough=True)
    assert box_iou(found.box, (x - x0, y - y0, fw, fh)) > 0.5  # it may reach past the tight crop's edges
    h, w = photo.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    turned = cv2.warpAffine(photo, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    (tilted,) = detector.detect(turned, thorough=True)
    cx, cy = matrix @ np.array([x + fw / 2, y + fh / 2, 1.0])
    tx, ty, tw, th = tilted.box
    assert abs(tx + tw / 2 - cx) < 0.25 * fw and abs(ty + th / 2 - cy) < 0.25 * fh

"""`evaluate --faces DIR`: a model scored on labelled faces from outside FER2013 (one subfolder per emotion)."""
import json

import cv2
import numpy as np
import pytest

from fer_core.cli import main
from fer_core.inference.face_folder import emotion_of_folder, load_face_folder
from fer_core.inference.faces import FaceDetector
from fer_core.labels import EMOTIONS

from tests.sample_files import astronaut_rgb, jpeg_bytes, photo_jpeg


@pytest.fixture
def faces_dir(tmp_path):
    """happy/: a photo with a face (TIFF) and a 48x48 crop; Sadness/: a photo without a face and a broken file;
    notes/: names no emotion."""
    root = tmp_path / "faces"
    for sub in ("happy", "Sadness", "notes"):
        (root / sub).mkdir(parents=True)
    cv2.imwrite(str(root / "happy" / "astronaut.tiff"), cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR))
    crop = cv2.resize(cv2.cvtColor(astronaut_rgb()[30:230, 150:330], cv2.COLOR_RGB2GRAY), (48, 48))
    cv2.imwrite(str(root / "happy" / "crop.png"), crop)
    (root / "Sadness" / "noise.jpg").write_bytes(photo_jpeg())
    (root / "Sadness" / "broken.jpg").write_bytes(jpeg_bytes(astronaut_rgb())[:500])
    (root / "notes" / "face.jpg").write_bytes(jpeg_bytes(astronaut_rgb()))
    (root / "happy" / "readme.txt").write_text("not an image")
    return root


def test_folder_names_of_other_datasets_map_to_our_emotions():
    assert [emotion_of_folder(n) for n in ("Happiness", "anger", "surprised", "neutral", "contempt")] == \
        ["happy", "angry", "surprise", "neutral", None]


def test_each_image_gives_its_largest_face_and_the_rest_are_skipped_with_a_reason(faces_dir):
    folder = load_face_folder(faces_dir, FaceDetector(""))
    assert folder.files == ["happy/astronaut.tiff"] and folder.labels.tolist() == [EMOTIONS.index("happy")]
    assert folder.crops.shape == (1, 48, 48) and folder.crops.dtype == np.uint8
    reasons = {s["file"]: s["reason"] for s in folder.skipped}
    assert set(reasons) == {"happy/crop.png", "Sadness/broken.jpg", "Sadness/noise.jpg"}
    assert reasons["Sadness/noise.jpg"] == "no face found" and "broken.jpg is" in reasons["Sadness/broken.jpg"]
    assert folder.ignored_folders == ["notes"]


def test_whole_images_are_faces_without_detection(faces_dir):
    folder = load_face_folder(faces_dir, None)
    assert folder.files == ["Sadness/noise.jpg", "happy/astronaut.tiff", "happy/crop.png"]
    assert [EMOTIONS[i] for i in folder.labels] == ["sad", "happy", "happy"]


def test_evaluate_cli_scores_the_folder(faces_dir, tiny_checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--faces", str(faces_dir), "--whole-image",
                 "--tta", "--tta-views", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 3 and report["faces"] == str(faces_dir) and not report["face_detection"]
    assert sum(report["per_class"][e]["support"] for e in EMOTIONS) == 3 and "clean" not in report
    assert [s["file"] for s in report["skipped"]] == ["Sadness/broken.jpg"] and report["ignored_folders"] == ["notes"]
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--faces", str(faces_dir)]) == 0
    out = capsys.readouterr().out
    assert f"on {faces_dir} (1 images" in out and "skipped 3 images (2 without a face found, 1 unreadable" in out


@pytest.mark.parametrize("make", ["missing", "no-emotion-folders"])
def test_a_folder_without_labelled_faces_is_one_line_and_exit_1(make, tmp_path, tiny_checkpoint, capsys):
    root = tmp_path / "faces"
    if make == "no-emotion-folders":
        (root / "holiday").mkdir(parents=True)
        (root / "holiday" / "a.jpg").write_bytes(jpeg_bytes(astronaut_rgb()))
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--faces", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("is not a folder" in err or "subfolders are holiday" in err)


def test_whole_image_without_a_folder_is_one_line_and_exit_1(tiny_checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--whole-image"]) == 1
    assert "--whole-image goes with --faces DIR" in capsys.readouterr().err

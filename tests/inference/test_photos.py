"""Whole photos through the pipeline: `evaluate --photos` (folder or CSV, stress copy), a photo without a face, and
reading the whole photo as one face when asked."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_core.cli import main
from fer_core.inference.recognizer import EmotionRecognizer
from fer_core.labels import EMOTIONS
from tests.sample_files import astronaut_rgb


@pytest.fixture
def photo_folder(tmp_path):
    """happy/: the astronaut, whole and small; sad/: a grey photo without a face; notes/: no emotion's name."""
    root = tmp_path / "photos"
    for folder in ("happy", "sad", "notes"):
        (root / folder).mkdir(parents=True)
    photo = astronaut_rgb()
    Image.fromarray(photo).save(root / "happy" / "astronaut.jpg")
    Image.fromarray(cv2.resize(photo, (160, 160), interpolation=cv2.INTER_AREA)).save(root / "happy" / "small.png")
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(root / "sad" / "wall.jpg")
    return root


def evaluate_json(capsys, *argv) -> tuple[int, dict]:
    code = main(["evaluate", "--json", *map(str, argv)])
    return code, json.loads(capsys.readouterr().out)


def test_every_photo_counts_and_no_face_is_wrong(capsys, photo_folder, tiny_checkpoint):
    code, report = evaluate_json(capsys, "--photos", photo_folder, "--checkpoint", tiny_checkpoint)
    assert code == 0 and report["n"] == 3 and report["faces_found"] == pytest.approx(2 / 3)
    assert report["columns"] == [*EMOTIONS, "no face"]
    sad = report["confusion_matrix"][EMOTIONS.index("sad")]
    assert sad[-1] == 1 and sum(sad) == 1  # the wall: no face, counted wrong
    happy = report["confusion_matrix"][EMOTIONS.index("happy")]
    assert sum(happy[:-1]) == 2  # both astronauts found, the small one too
    assert report["accuracy"] <= 2 / 3 and report["per_class"]["sad"] == 0.0 and report["per_class"]["angry"] is None
    assert report["ms_per_photo"] > 0 and report["detector"] == "OpenCV Haar cascade"


def test_a_csv_of_photos_and_the_stress_copy(capsys, photo_folder, tiny_checkpoint):
    listing = photo_folder / "list.csv"
    listing.write_text("path,label\nhappy/astronaut.jpg,happy\nsad/wall.jpg,sad\nhappy/small.png,not-an-emotion\n")
    code, report = evaluate_json(capsys, "--photos", listing, "--checkpoint", tiny_checkpoint, "--stress")
    assert code == 0 and report["n"] == 2 and report["stress"] is True
    assert set(report["by_stress"]) == {"tight", "small"}  # photo 0 is cut tight, photo 1 made small


def test_the_text_report_and_bad_input(capsys, photo_folder, tiny_checkpoint, tmp_path):
    assert main(["evaluate", "--photos", str(photo_folder), "--checkpoint", str(tiny_checkpoint), "--tta"]) == 0
    out = capsys.readouterr().out
    assert "faces found 66.7%" in out and "of all photos" in out and "ms per photo" in out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["evaluate", "--photos", str(empty), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert "no labelled photos" in capsys.readouterr().err
    assert main(["evaluate", "--stress", "--checkpoint", str(tiny_checkpoint)]) == 1
    assert "--stress goes with --photos" in capsys.readouterr().err


def test_the_whole_photo_is_read_as_one_face_only_when_asked_and_says_so(capsys, tiny_checkpoint, photo_folder):
    rec = EmotionRecognizer.load(tiny_checkpoint, engine="torch")
    wall = photo_folder / "sad" / "wall.jpg"
    assert rec.predict(wall) == []
    (result,) = rec.predict(wall, whole_if_none=True)
    assert result.whole_image and result.to_dict()["whole_image"] is True and result.box == (0, 0, 400, 300)
    (found,) = rec.predict(photo_folder / "happy" / "astronaut.jpg", whole_if_none=True)
    assert not found.whole_image and "whole_image" not in found.to_dict()
    assert main(["predict", str(wall), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert "no face found (--whole-if-none" in capsys.readouterr().out
    assert main(["predict", str(wall), "--checkpoint", str(tiny_checkpoint), "--whole-if-none"]) == 0
    assert "the whole photo read as one face" in capsys.readouterr().out

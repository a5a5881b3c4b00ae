"""`python -m fer_core predict`: the JSON contract, per-file errors and exit codes 0 / 1 / 2."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fer_core.cli import main
from fer_core.inference.faces import YUNET_ENV
from fer_core.labels import EMOTIONS
from tests.conftest import REPO
from tests.sample_files import BAD_IMAGES, BAD_VIDEOS, astronaut_rgb, write_face_video


@pytest.fixture(autouse=True)
def _haar(monkeypatch):
    monkeypatch.delenv(YUNET_ENV, raising=False)


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut_rgb()).save(path, quality=92)
    return path


def predict_json(capsys, *argv) -> tuple[int, list]:
    code = main(["predict", "--json", *map(str, argv)])
    return code, json.loads(capsys.readouterr().out)


def test_one_photo_gives_one_face_and_exit_0(capsys, tiny_checkpoint, photo):
    code, entries = predict_json(capsys, photo, "--checkpoint", tiny_checkpoint, "--tta")
    assert code == 0
    assert entries == [{"file": str(photo), "faces": entries[0]["faces"]}]
    face = entries[0]["faces"][0]
    assert len(entries[0]["faces"]) == 1
    assert len(face["box"]) == 4 and all(isinstance(v, int) for v in face["box"])
    assert face["label"] in EMOTIONS and list(face["probabilities"]) == list(EMOTIONS)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_explain_writes_one_heat_map_per_face(capsys, tiny_checkpoint, tmp_path):
    named = tmp_path / "my photo (1).jpg"  # a name that is no plain file name: the heat map's is derived from it
    Image.fromarray(astronaut_rgb()).save(named, quality=92)
    out = tmp_path / "maps"
    code, entries = predict_json(capsys, named, "--checkpoint", tiny_checkpoint, "--tta", "--explain", out)
    assert code == 0
    (face,) = entries[0]["faces"]
    png = out / f"my_photo__1_-face1-{face['label']}.png"
    assert face["saliency_png"] == str(png) and sorted(out.iterdir()) == [png]
    with Image.open(png) as image:
        assert image.mode == "RGB" and image.width == image.height >= 96


def test_explain_in_text_mode_names_the_heat_maps_and_says_videos_have_none(capsys, tiny_checkpoint, photo,
                                                                           tmp_path):
    video = tmp_path / "clip.mp4"
    write_face_video(video)
    code = main(["predict", str(photo), str(video), "--checkpoint", str(tiny_checkpoint), "--explain",
                 str(tmp_path / "maps")])
    out = capsys.readouterr().out
    assert code == 0 and "heat map of face" in out and "heat maps are written for photos only" in out


def test_explain_into_a_file_an_empty_name_or_a_missing_parent_is_refused_first(capsys, tiny_checkpoint, photo,
                                                                                tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    for out, words, exit_code in ((blocker, "is not a folder", 1), ("", "--explain was given an empty value", 2),
                                  (tmp_path / "no" / "maps", "parent folder does not exist", 1)):
        code = main(["predict", str(photo), "--checkpoint", str(tiny_checkpoint), "--explain", str(out)])
        captured = capsys.readouterr()
        assert code == exit_code and captured.out == "" and words in captured.err and captured.err.count("\n") == 1
    assert blocker.read_text() == "not a folder" and not (tmp_path / "no").exists()


def test_heat_maps_of_photos_with_the_same_name_do_not_overwrite_each_other(capsys, tiny_checkpoint, tmp_path):
    photos = [tmp_path / "a" / "same.jpg", tmp_path / "b" / "same.jpg", tmp_path / "a" / "same.png"]
    for path in photos:
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(astronaut_rgb()).save(path)
    out = tmp_path / "maps"
    code, entries = predict_json(capsys, *photos, "--checkpoint", tiny_checkpoint, "--explain", out)
    pngs = [face["saliency_png"] for entry in entries for face in entry["faces"]]
    assert code == 0 and len(pngs) == 3 and len(set(pngs)) == 3
    assert sorted(str(p) for p in out.iterdir()) == sorted(pngs)


def test_explain_with_an_onnx_model_says_it_needs_the_checkpoint(capsys, tiny_checkpoint, photo, tmp_path):
    from fer_core.models.loading import export_onnx
    onnx = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    code, entries = predict_json(capsys, photo, "--checkpoint", onnx, "--explain", tmp_path / "maps")
    assert code == 1 and "PyTorch checkpoint" in entries[0]["error"]


def test_a_photo_without_a_face_is_a_success_with_no_faces(capsys, tiny_checkpoint, tmp_path):
    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((240, 320, 3), 200, np.uint8)).save(blank)
    code, entries = predict_json(capsys, blank, "--checkpoint", tiny_checkpoint)
    assert code == 0 and entries == [{"file": str(blank), "faces": []}]


def test_no_detect_gives_the_whole_image_as_one_face(capsys, tiny_checkpoint, tmp_path):
    crop = tmp_path / "fer.jpg"
    Image.fromarray(astronaut_rgb()).convert("L").resize((48, 48)).save(crop)
    code, entries = predict_json(capsys, crop, "--checkpoint", tiny_checkpoint, "--no-detect")
    assert code == 0 and [f["box"] for f in entries[0]["faces"]] == [[0, 0, 48, 48]]


def test_bad_files_get_their_error_and_the_batch_goes_on_with_exit_1(capsys, tiny_checkpoint, tmp_path, photo):
    paths = []
    for name, data, _ in BAD_IMAGES + BAD_VIDEOS:
        paths.append(tmp_path / name)
        paths[-1].write_bytes(data)
    code, entries = predict_json(capsys, *paths, photo, "--checkpoint", tiny_checkpoint)
    assert code == 1
    assert [e["file"] for e in entries] == [str(p) for p in paths] + [str(photo)]
    for entry, (_name, _, message) in zip(entries, BAD_IMAGES + BAD_VIDEOS):
        assert set(entry) == {"file", "error"} and message in entry["error"], entry
    assert len(entries[-1]["faces"]) == 1  # the good file after the bad ones still succeeded


def test_missing_file_is_a_per_file_error(capsys, tiny_checkpoint, photo):
    code, entries = predict_json(capsys, photo, "/nonexistent/x.jpg", "--checkpoint", tiny_checkpoint)
    assert code == 1 and "not found" in entries[1]["error"]


def test_video_gives_frames(capsys, tiny_checkpoint, tmp_path):
    clip = tmp_path / "clip.avi"
    write_face_video(clip, frames=10)
    code, entries = predict_json(capsys, clip, "--checkpoint", tiny_checkpoint, "--every-n", "5")
    assert code == 0
    assert [f["frame"] for f in entries[0]["frames"]] == [0, 5]
    assert all(len(f["faces"]) == 1 for f in entries[0]["frames"])


def test_text_output_names_each_file(capsys, tiny_checkpoint, photo, tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    assert main(["predict", str(photo), str(empty), "--checkpoint", str(tiny_checkpoint)]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{photo}: ") and "%" in out
    assert f"{empty}: error: empty.jpg is empty (0 bytes)" in err


def test_missing_default_model_is_a_clear_error_exit_1(capsys, tmp_path, photo, monkeypatch):
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path))
    assert main(["predict", str(photo)]) == 1
    assert "the default model is missing" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["predict"], ["predict", "x.jpg", "--tta-views", "40"],
                                  ["predict", "x.jpg", "--every-n", "0"], ["predict", "x.jpg", "--bogus"]])
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2


def test_module_entry_point_end_to_end(tiny_checkpoint, photo, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    proc = subprocess.run([sys.executable, "-m", "fer_core", "predict", str(photo), str(bad), "--json",
                           "--checkpoint", str(tiny_checkpoint)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr
    entries = json.loads(proc.stdout)
    assert len(entries[0]["faces"]) == 1 and "is not an image" in entries[1]["error"]

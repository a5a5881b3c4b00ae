"""ONNX export and the onnxruntime path: a checkpoint and an ensemble export, agree with PyTorch and predict."""
import json

import numpy as np
import pytest
import torch

from fer_core.cards.ensembles import save_ensemble
from fer_core.cli import main
from fer_core.errors import CheckpointError
from fer_core.evaluation.export_check import verify_export
from fer_core.inference.recognizer import EmotionRecognizer
from fer_core.labels import EMOTIONS
from fer_core.models.loading import load_model
from fer_core.models.loading import export_onnx
from fer_core.models.onnx import OnnxModel

from tests.models.test_ensemble import two_checkpoints  # noqa: F401  (fixture)

FACES = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)


def test_a_checkpoint_exports_with_a_dynamic_batch_and_matches_pytorch(tiny_checkpoint, tmp_path):
    onnx = export_onnx(tiny_checkpoint, tmp_path / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "tiny.pt"]  # one file, weights inside
    check = verify_export(tiny_checkpoint, onnx, FACES)
    assert check["n"] == 40 and check["max_abs_diff"] < 1e-3 and check["top1_agreement"] == 1.0
    model = OnnxModel(onnx)
    for batch in (1, 7):
        probs = model(torch.zeros(batch, 1, 48, 48)).exp()
        assert probs.shape == (batch, len(EMOTIONS)) and torch.allclose(probs.sum(1), torch.ones(batch), atol=1e-5)


def test_an_ensemble_exports_as_one_graph_that_averages_its_members(two_checkpoints, tmp_path):  # noqa: F811
    card = save_ensemble("duo", [{"name": p.stem, "checkpoint": p} for p in two_checkpoints], {}, 2,
                         models_dir=tmp_path / "models")
    onnx = export_onnx(card, tmp_path / "duo.onnx")
    check = verify_export(card, onnx, FACES)
    assert check["max_abs_diff"] < 1e-3 and check["top1_agreement"] == 1.0


def test_the_recognizer_and_the_predict_cli_run_an_onnx_model(tiny_checkpoint, tmp_path, capsys):
    from tests.sample_files import astronaut_rgb
    onnx = export_onnx(tiny_checkpoint, tmp_path / "model.onnx")
    rec = EmotionRecognizer.load(onnx)
    [face] = rec.predict(astronaut_rgb(), tta=True, views=4, detect=False)
    [reference] = EmotionRecognizer.load(tiny_checkpoint).predict(astronaut_rgb(), tta=True, views=4, detect=False)
    assert face.label == reference.label and abs(face.confidence - reference.confidence) < 1e-3
    photo = tmp_path / "face.png"
    import cv2
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_rgb(), cv2.COLOR_RGB2BGR))
    assert main(["predict", str(photo), "--checkpoint", str(onnx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["faces"]


def test_export_cli_checks_the_export_and_says_so(tiny_checkpoint, tmp_path, make_kaggle_zip, capsys):
    assert main(["export", str(tiny_checkpoint), "--onnx", str(tmp_path / "m.onnx"),
                 "--data", str(make_kaggle_zip())]) == 0
    out = capsys.readouterr().out
    assert "exported" in out and "check on 21 PrivateTest images" in out and "top-1 agreement 100.00%" in out
    assert "torch.onnx" not in out


def test_a_corrupt_onnx_file_is_one_line_and_exit_1(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage that is no protobuf")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_model(bad)
    assert main(["evaluate", "--checkpoint", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable ONNX model" in err


def test_an_onnx_model_for_other_inputs_is_refused(tmp_path, capsys):
    other = tmp_path / "rgb.onnx"
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(7))
    net(torch.zeros(1, 3, 32, 32))
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), other, dynamo=False)
    with pytest.raises(CheckpointError, match="not a batch of 1x48x48 faces"):
        OnnxModel(other)
    assert main(["evaluate", "--checkpoint", str(other)]) == 1
    assert "1x48x48" in capsys.readouterr().err


def test_export_to_a_folder_that_cannot_be_written_is_one_line(tiny_checkpoint, tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for target in (tmp_path / "missing-folder" / "m.onnx", a_file / "m.onnx", tmp_path / "m.txt"):
        assert main(["export", str(tiny_checkpoint), "--onnx", str(target)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "tiny.pt"]


def test_an_exported_model_in_models_is_a_choice_of_predict_and_live(tiny_checkpoint, tmp_path):
    from dashboard.shared.model_picker import model_choices
    from fer_core.bench.sample_faces import astronaut_clip
    from fer_core.inference.live import LiveProcessor, LiveSettings
    (tmp_path / "models").mkdir()
    onnx = export_onnx(tiny_checkpoint, tmp_path / "models" / "mine.onnx")
    assert ("ONNX model: mine.onnx", onnx) in model_choices(tmp_path / "models", tmp_path / "runs")
    processor = LiveProcessor(EmotionRecognizer.load(onnx, onnxruntime_threads=1), LiveSettings(detect_every=2))
    for rgb in astronaut_clip(3):
        processor.process(rgb)
    status = processor.status()
    assert status.error is None and len(status.faces) == 1 and status.faces[0].label in EMOTIONS


def test_the_predict_page_runs_an_exported_model(tiny_checkpoint, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from fer_core.inference.faces import YUNET_ENV
    from tests.conftest import REPO
    from tests.sample_files import astronaut_rgb, jpeg_bytes
    monkeypatch.delenv(YUNET_ENV, raising=False)
    onnx = export_onnx(tiny_checkpoint, tmp_path / "model.onnx")
    at = AppTest.from_file(str(REPO / "pages" / "predict.py"), default_timeout=120).run()
    at.selectbox(key="model").select("Another checkpoint file…").run()
    at.text_input(key="checkpoint_path").input(str(onnx)).run()
    at.file_uploader(key="photos").set_value([("astronaut.jpg", jpeg_bytes(astronaut_rgb()), "image/jpeg")])
    at.run()
    assert not at.exception and not at.error
    assert any(md.value.startswith("**Face 1:") for md in at.markdown)


def test_onnx_runtime_does_not_spin_between_runs(tiny_checkpoint, tmp_path):
    """Its threads sleep between runs, leaving the cores to PyTorch's (TTA's views, the detector) in one pipeline."""
    from fer_core.models.onnx import OnnxModel
    model = OnnxModel(export_onnx(tiny_checkpoint, tmp_path / "model.onnx"))
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"

"""Engines: `--engine` is honoured, `auto` measures once per model file and falls back when ONNX Runtime cannot
run a model, int8 exports are refused below their agreement bar, and bf16 follows the CPU restriction."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import fer_core.inference.engines as engines
from fer_core.cli import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def tiny_data(make_kaggle_zip, monkeypatch):
    path = str(make_kaggle_zip())
    monkeypatch.setenv("FER_DATA", path)  # the int8 calibration's training faces
    return path


@pytest.mark.parametrize("engine, ran", [("torch", "PyTorch"), ("onnxruntime", "ONNX Runtime fp32"),
                                         ("int8", "ONNX Runtime int8")])
def test_evaluate_runs_the_engine_it_is_given(tiny_checkpoint, tiny_data, capsys, engine, ran):
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", tiny_data, "--engine", engine,
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"].startswith(ran) and report["n"] == 21


def test_predict_names_an_unknown_engine(tiny_checkpoint, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "x.jpg", "--engine", "tensorrt"])
    assert "invalid choice: 'tensorrt'" in capsys.readouterr().err


def test_auto_measures_once_per_model_file_and_again_when_the_file_changes(tiny_checkpoint, tiny_data, monkeypatch,
                                                                             tmp_path):
    model = tmp_path / "model.pt"
    shutil.copy(tiny_checkpoint, model)
    calls = []
    real = engines.measure_engines
    monkeypatch.setattr(engines, "measure_engines", lambda *a, **k: calls.append(a) or real(*a, **k))
    first = engines.choose_engine(model, 8)
    assert first in engines.ENGINES and engines.choose_engine(model, 8) == first and len(calls) == 1
    measured = json.loads((engines.default_cache_dir() / "engines.json").read_text())
    assert any(set(m["measured"]) == set(engines.ENGINES) for m in measured.values())
    engines.choose_engine(model, 1)  # another batch size is another question
    assert len(calls) == 2
    model.unlink()
    shutil.copy(tiny_checkpoint, model)  # re-shipped: a new file under the same name
    engines.choose_engine(model, 8)
    assert len(calls) == 3


def test_a_choice_made_on_noise_is_made_again_once_the_dataset_is_there(tiny_checkpoint, make_kaggle_zip, monkeypatch,
                                                                         tmp_path):
    calls = []
    monkeypatch.setattr(engines, "measure_engines", lambda *a, **k: calls.append(a) or {"torch": {"ms": 1.0,
                                                                                                 "agreement": 1.0}})
    monkeypatch.setenv("FER_DATA", str(tmp_path / "nowhere.zip"))
    assert engines.probe_source() == "noise"
    engines.choose_engine(tiny_checkpoint, 8)
    engines.choose_engine(tiny_checkpoint, 8)
    assert len(calls) == 1
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    assert engines.probe_source() == "FER2013"
    engines.choose_engine(tiny_checkpoint, 8)  # the probe would now run on real faces: measured again
    assert len(calls) == 2


def test_auto_falls_back_to_pytorch_when_onnx_runtime_cannot_run_the_model(tiny_checkpoint, tiny_data,
                                                                           monkeypatch):
    def broken(*args, **kw):
        raise RuntimeError("exporter crashed")
    monkeypatch.setattr(engines, "cached_export", broken)
    assert engines.choose_engine(tiny_checkpoint, 4) == "torch"
    measured = engines.measure_engines(tiny_checkpoint, 4)
    assert "exporter crashed" in measured["onnxruntime"]["error"] and "ms" in measured["torch"]
    with pytest.raises(engines.FERError, match="onnxruntime engine cannot run"):
        engines.load_engine(tiny_checkpoint, "onnxruntime")


def test_auto_takes_the_fastest_engine_that_agrees(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(engines, "measure_engines", lambda *a, **k: {
        "torch": {"ms": 9.0, "agreement": 1.0}, "onnxruntime": {"ms": 4.0, "agreement": 1.0},
        "int8": {"ms": 1.0, "agreement": 0.9}})  # the fastest disagrees too often
    assert engines.choose_engine(tiny_checkpoint, 16) == "onnxruntime"


@pytest.mark.parametrize("bar, written", [(1.01, False), (0.0, True)])
def test_int8_export_is_refused_below_its_agreement_bar(tiny_checkpoint, tiny_data, tmp_path, monkeypatch, capsys,
                                                        bar, written):
    import fer_core.evaluation.export_check as export_check
    monkeypatch.setattr(export_check, "INT8_MIN_AGREEMENT", bar)
    monkeypatch.setattr(export_check, "INT8_MAX_ACCURACY_LOSS", 1.0)
    out = tmp_path / "model.int8.onnx"
    code = main(["export", str(tiny_checkpoint), "--onnx", str(out), "--int8", "--data", tiny_data])
    err = capsys.readouterr().err
    assert (code == 0) == written and out.exists() == written
    if written:
        from fer_core.models.onnx import OnnxModel
        assert OnnxModel(out).precision == "int8"
    else:
        assert "misses its targets" in err and "agreement" in err


def test_bf16_follows_a_restriction_to_avx2():
    code = "from fer_core.models.precision import cpu_supports_bf16; print(cpu_supports_bf16())"
    for restriction in ({"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}):
        out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **restriction, "PYTHONPATH": REPO},
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == "False", restriction

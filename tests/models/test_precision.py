"""bf16 on the CPU where it is native, fp32 elsewhere: training, the fallback, and inference's choice."""
import json
from pathlib import Path

import pytest
import torch

import fer_core.models.precision as precision
import fer_core.training.train as train_module
from fer_core.evaluation.metrics import predict_images
from fer_core.training.config import TrainConfig, config_from_args, get_args_parser
from fer_core.training.train import main as train

REPO = Path(__file__).resolve().parents[2]
TINY = dict(arch="fer_vgg_small", batch_size=16, tta_views=2, epochs=1, device="cpu")
NATIVE = precision.cpu_supports_bf16()


@pytest.fixture
def tiny_zip(make_kaggle_zip):
    return str(make_kaggle_zip(per_class=(6, 3, 3)))


@pytest.fixture
def conv_dtypes(monkeypatch):
    """The dtype of the first convolution's output in every training forward pass."""
    seen = []
    real_create = train_module.create_model

    def create_and_watch(*args, **kw):
        model = real_create(*args, **kw)
        first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first_conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype) if mod.training else None)
        return model
    monkeypatch.setattr(train_module, "create_model", create_and_watch)
    return seen


def _epoch_line(run_dir) -> dict:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])


def test_amp_off_trains_in_plain_fp32(tmp_path, tiny_zip, conv_dtypes):
    run = train(TrainConfig(data=tiny_zip, out=str(tmp_path), name="fp32", amp=False, **TINY))
    assert _epoch_line(run)["precision"] == "fp32"
    assert conv_dtypes and set(conv_dtypes) == {torch.float32}
    assert json.loads((run / "status.json").read_text())["precision"] == "fp32"
    assert json.loads((run / "eval.json").read_text())["test"]["plain"]["n"] == 21


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16 (AVX512-BF16/AMX): training stays in fp32")
def test_amp_on_trains_in_bf16_on_a_bf16_cpu_with_fp32_master_weights(tmp_path, tiny_zip, conv_dtypes):
    run = train(TrainConfig(data=tiny_zip, out=str(tmp_path), name="bf16", amp=True, **TINY))
    assert _epoch_line(run)["precision"] == "bf16"
    assert conv_dtypes and set(conv_dtypes) == {torch.bfloat16}
    state = torch.load(run / "last.pt", weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}


def test_amp_on_falls_back_to_fp32_where_bf16_is_not_native(tmp_path, tiny_zip, conv_dtypes, monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    run = train(TrainConfig(data=tiny_zip, out=str(tmp_path), name="fallback", amp=True, **TINY))
    assert _epoch_line(run)["precision"] == "fp32"
    assert set(conv_dtypes) == {torch.float32}


def test_amp_is_on_by_default_and_off_from_the_cli():
    parser = get_args_parser()
    assert config_from_args(parser.parse_args([])).amp is True
    assert config_from_args(parser.parse_args(["--amp", "off"])).amp is False


def test_cpu_detection_reads_the_instruction_flags(monkeypatch, tmp_path):
    precision.cpu_supports_bf16.cache_clear()
    try:
        monkeypatch.setattr(precision, "Path", lambda _: tmp_path / "cpuinfo")
        (tmp_path / "cpuinfo").write_text("flags\t\t: fpu avx512f avx512bw\n")
        assert precision.cpu_supports_bf16() is False  # AVX-512 alone: bf16 would be emulated, slower
        precision.cpu_supports_bf16.cache_clear()
        (tmp_path / "cpuinfo").write_text("flags\t\t: fpu avx512f avx512_bf16\n")
        assert precision.cpu_supports_bf16() is (torch.backends.mkldnn.is_available())
    finally:
        precision.cpu_supports_bf16.cache_clear()


def test_inference_runs_in_bf16_only_where_it_is_native_and_asked_for(monkeypatch):
    from fer_core.models.checkpoints import load_checkpoint, model_from_checkpoint
    model = model_from_checkpoint(load_checkpoint(REPO / "models" / "default.pt"))
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    seen = []
    first_conv.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    faces = torch.randint(0, 256, (3, 48, 48), dtype=torch.uint8).numpy()
    for native, amp, expected in ((True, True, torch.bfloat16), (True, False, torch.float32),
                                  (False, True, torch.float32)):
        if native and not NATIVE:
            continue
        monkeypatch.setattr(precision, "cpu_supports_bf16", lambda native=native: native)
        seen.clear()
        predict_images(model, faces, 1, 256, "cpu", amp=amp)
        assert set(seen) == {expected}, (native, amp)


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16")
def test_bf16_predictions_agree_with_fp32():
    from fer_core.models.checkpoints import load_checkpoint, model_from_checkpoint
    model = model_from_checkpoint(load_checkpoint(REPO / "models" / "default.pt"))
    images = torch.randint(0, 256, (64, 48, 48), dtype=torch.uint8).numpy()
    bf16 = predict_images(model, images, 2, 128, "cpu")
    fp32 = predict_images(model, images, 2, 128, "cpu", amp=False)
    assert abs(bf16 - fp32).max() < 0.05 and (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.9

"""Training runs on a tiny synthetic dataset: every architecture, the run folder, resume, reproducibility."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fer_core.errors import CheckpointError, FERError
from fer_core.evaluation.metrics import metrics_report, predict_images
from fer_core.models.checkpoints import export_half, load_checkpoint, model_from_checkpoint
from fer_core.models.registry import list_models
from fer_core.training import train as train_module
from fer_core.training.config import TrainConfig
from fer_core.training.train import main

SMALL = dict(batch_size=16, tta_views=4, rotate=5, zoom=0.05, shift=0.05, erase=0.25)


@pytest.fixture
def tiny_zip(make_kaggle_zip):
    return make_kaggle_zip(per_class=(6, 3, 3))


def run_config(tmp_path, data, **kw):
    return TrainConfig(data=str(data), out=str(tmp_path / "runs"), **{"epochs": 1, **SMALL, **kw})


@pytest.mark.parametrize("arch", sorted(list_models()))
def test_every_architecture_learns_from_one_step(arch):
    """One forward and backward pass (as timm's test_model_backward): logits of the right shape and a finite
    gradient on every trainable parameter."""
    import torch

    from fer_core.models.registry import create_model
    torch.manual_seed(0)
    model = create_model(arch).train()
    logits = model(torch.rand(4, 1, 48, 48))
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 3, 6])).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert logits.shape == (4, 7) and missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# a whole epoch adds the run folder and evaluation: the default architecture in the fast lane, the rest in the slow
@pytest.mark.parametrize("arch", [pytest.param(a, marks=[] if a == "fer_vgg_small" else pytest.mark.slow)
                                  for a in sorted(list_models())])
def test_one_epoch_smoke_training_per_architecture(arch, tmp_path, tiny_zip):
    run = main(run_config(tmp_path, tiny_zip, arch=arch, name=arch))
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt", "eval.json", "status.json"} <= {
        p.name for p in run.iterdir()}
    (line,) = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "lr",
            "images_per_s", "seconds"} <= set(line)
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    evaluation = json.loads((run / "eval.json").read_text())
    for split, n in (("val", 21), ("test", 21)):
        assert evaluation[split]["plain"]["n"] == n and evaluation[split]["tta"]["tta_views"] == 4


@pytest.mark.parametrize("balance", ["weighted", "oversample", "undersample"])
def test_balancing_methods_train(balance, tmp_path, tiny_zip):
    run = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", balance=balance, optimizer="adam",
                          scheduler="plateau"))
    assert json.loads((run / "status.json").read_text())["state"] == "finished"


@pytest.mark.parametrize("optimizer,scheduler", [("nadam", "cosine"), ("adamw", "none"), ("sgd", "onecycle")])
def test_optimizers_and_schedulers(optimizer, scheduler, tmp_path, tiny_zip):
    run = main(run_config(tmp_path, tiny_zip, arch="elu_cnn", optimizer=optimizer, scheduler=scheduler, epochs=2))
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_epoch_size_trains_on_a_fresh_subset_each_epoch(tmp_path, tiny_zip):
    from fer_core.training.batches import epoch_order
    labels = torch.arange(7).repeat(20)
    cfg = TrainConfig(epoch_size=30)
    first, second = (epoch_order(labels, cfg, torch.Generator().manual_seed(s)) for s in (1, 2))
    assert len(first) == len(second) == 30 and len(set(first.tolist())) == 30
    assert set(first.tolist()) != set(second.tolist())
    balanced = epoch_order(labels, TrainConfig(epoch_size=30, balance="undersample"), torch.Generator())
    assert len(balanced) == 30  # the cut comes after balancing
    run = main(run_config(tmp_path, tiny_zip, arch="seed_cnn", epochs=2, epoch_size=16, batch_size=8))
    lines = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and json.loads((run / "eval.json").read_text())["test"]["plain"]["n"] == 21


def test_config_survives_the_command_line_round_trip():
    from fer_core.training.config import config_from_args, config_to_args, get_args_parser
    for cfg in (TrainConfig(arch="seed_cnn", epoch_size=4096, track_test=True, stop_at_test_accuracy=0.7,
                            balance="weighted", compile=True, flip=False, batch_size="auto", exclude="audit",
                            alternating_flip=True),
                TrainConfig(teacher="ensemble.json", teacher_views=8, teacher_mirror=True)):
        assert config_from_args(get_args_parser().parse_args(config_to_args(cfg))) == cfg


def test_a_target_test_accuracy_ends_the_run_and_one_cycle_survives_tiny_step_counts(tmp_path, tiny_zip):
    run = main(run_config(tmp_path, tiny_zip, arch="seed_cnn", epochs=5, epoch_size=16, batch_size=8,
                          track_test=True, stop_at_test_accuracy=0.0))  # 2 steps per epoch; reached at once
    (line,) = [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert line["epoch"] == 1 and 0 <= line["test_accuracy"] <= 1 and "test_macro_f1" in line
    assert line["test_tta_views"] == 2 and 0 <= line["test_tta_accuracy"] <= 1  # mirror TTA by default
    with pytest.raises(ValueError, match="needs --track-test"):
        TrainConfig(stop_at_test_accuracy=0.7).validate()


def test_early_stopping_ends_patience_epochs_after_the_last_gain(tmp_path, tiny_zip, monkeypatch):
    """Val accuracy 0.3, 0.5, then flat: with patience 2 the run ends after epoch 4, exactly."""
    scores = iter([0.3, 0.5, 0.5, 0.4, 0.9, 0.9])

    def scripted_evaluate(model, split, device, prefix="val", views=1):
        return {f"{prefix}_loss": 1.0, f"{prefix}_accuracy": next(scores), f"{prefix}_macro_f1": 0.1}
    monkeypatch.setattr(train_module, "evaluate", scripted_evaluate)
    run = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", epochs=30, patience=2))
    epochs = [json.loads(s)["epoch"] for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, 4]
    assert load_checkpoint(run / "best.pt")["epoch"] == 2


def test_fixed_seed_reproduces_a_run(tmp_path, tiny_zip):
    a = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", epochs=2, name="a"))
    b = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", epochs=2, name="b"))
    strip = lambda run: [{k: v for k, v in json.loads(s).items() if k not in ("images_per_s", "seconds", "time")}  # noqa: E731
                         for s in (run / "metrics.jsonl").read_text().splitlines()]
    assert strip(a) == strip(b)


def test_resume_after_a_crash_counts_every_epoch_once_and_matches(tmp_path, tiny_zip, crash_in_epoch):
    cfg = dict(arch="fer_vgg_small", epochs=3)
    straight = main(run_config(tmp_path, tiny_zip, name="straight", **cfg))

    crash_in_epoch(3)
    with pytest.raises(MemoryError):
        main(run_config(tmp_path, tiny_zip, name="crashed", **cfg))
    crashed = tmp_path / "runs" / "crashed"
    assert load_checkpoint(crashed / "last.pt")["epoch"] == 2
    crash_in_epoch(None)

    main(None, resume=crashed)
    epochs = [json.loads(s)["epoch"] for s in (crashed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    final = lambda run: json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val_loss"]  # noqa: E731
    assert final(crashed) == pytest.approx(final(straight), rel=1e-5)


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_writes_one_run(tmp_path, tiny_zip):
    """The torchrun code path (DistributedDataParallel, sharded epochs, rank-0 writes) on gloo."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1", "--nproc_per_node", "2",
           "-m", "fer_core", "train", "--arch", "fer_vgg_small", "--data", str(tiny_zip), "--epochs", "2",
           "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path), "--name", "ddp", "--tta-views", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    run = tmp_path / "ddp"
    assert sorted(p.name for p in run.glob("*.pt")) == ["best.pt", "last.pt"]
    assert [json.loads(s)["epoch"] for s in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "finished" and status["device"].endswith("x2 processes")
    assert status["batch_size"] == 16  # 8 per process
    assert load_checkpoint(run / "best.pt")["arch"] == "fer_vgg_small"


def test_resume_needs_a_run_folder(tmp_path):
    with pytest.raises(FERError, match="no config.json"):
        main(None, resume=tmp_path)


def test_existing_run_folder_is_not_overwritten(tmp_path, tiny_zip):
    main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", name="taken"))
    with pytest.raises(FERError, match="already exists"):
        main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", name="taken"))


def test_exclude_file_leaves_images_out(tmp_path, tiny_zip):
    from fer_core.data.fer2013 import load_dataset
    ids = load_dataset(tiny_zip)["train"].ids[:10]
    exclude = tmp_path / "flagged.txt"
    exclude.write_text("\n".join(ids) + "\n")
    run = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", exclude=str(exclude)))
    assert json.loads((run / "status.json").read_text())["train_images"] == 42 - 10
    assert json.loads((run / "config.json").read_text())["exclude"] == str(exclude)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(optimizer="rmsprop"), dict(balance="smote"),
                                 dict(label_smoothing=1.5), dict(batch_size=1), dict(tta_views=99),
                                 dict(epoch_size=4)])
def test_invalid_options_are_refused_before_anything_starts(bad, tmp_path, tiny_zip):
    with pytest.raises(ValueError):
        run_config(tmp_path, tiny_zip, **bad).validate()


# ----------------------------------------------------------------------------- checkpoints and evaluation

def test_a_crop_run_saves_a_checkpoint_that_reloads_as_a_crop_model(tmp_path, tiny_zip):
    run = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small", crop=40))
    ckpt = load_checkpoint(run / "best.pt")
    assert ckpt["model_config"] == {"crop": 40}
    model = model_from_checkpoint(ckpt)
    assert model.side == 40 and model(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
    assert json.loads((run / "eval.json").read_text())["test"]["tta"]["n"] == 21


def test_checkpoint_round_trip_and_half_precision_export(tmp_path, tiny_zip):
    from fer_core.data.fer2013 import load_dataset
    run = main(run_config(tmp_path, tiny_zip, arch="fer_vgg_small"))
    images = load_dataset(tiny_zip)["test"].images
    full = predict_images(model_from_checkpoint(load_checkpoint(run / "best.pt")), images)
    small = export_half(run / "best.pt", tmp_path / "small.pt")
    half = predict_images(model_from_checkpoint(load_checkpoint(small)), images)
    assert small.stat().st_size < (run / "best.pt").stat().st_size * 0.6
    assert np.abs(full - half).max() < 0.02
    assert (full.argmax(1) == half.argmax(1)).mean() > 0.9


def test_init_fine_tunes_from_a_trained_model_of_the_same_architecture(tmp_path, tiny_zip):
    first = main(run_config(tmp_path, tiny_zip, arch="elu_cnn", name="first"))
    start = load_checkpoint(first / "best.pt")["state_dict"]
    run = main(run_config(tmp_path, tiny_zip, arch="elu_cnn", name="tuned", init=str(first / "best.pt"),
                          lr=1e-9, optimizer="adam", degrade=0.5))
    tuned = load_checkpoint(run / "best.pt")["state_dict"]
    # a learning rate near zero leaves the weights where --init put them (batch-norm statistics still move)
    assert all(torch.allclose(start[k], tuned[k], atol=1e-5) for k in start if k.endswith("weight"))
    assert json.loads((run / "config.json").read_text())["init"] == str(first / "best.pt")
    for bad, message in ((dict(arch="fer_vgg_small"), "--arch elu_cnn: it cannot start --arch fer_vgg_small"),
                         (dict(arch="elu_cnn", crop=40), "cannot start --arch elu_cnn with --crop 40"),
                         (dict(arch="elu_cnn", init=str(tmp_path / "missing.pt")), "not found")):
        with pytest.raises(ValueError, match=message):
            run_config(tmp_path, tiny_zip, **{"init": str(first / "best.pt"), **bad}).validate()


def test_a_fine_tuned_run_resumes_after_the_model_it_started_from_is_gone(tmp_path, tiny_zip, crash_in_epoch):
    first = main(run_config(tmp_path, tiny_zip, arch="elu_cnn", name="first"))
    crash_in_epoch(2)
    with pytest.raises(MemoryError):
        main(run_config(tmp_path, tiny_zip, arch="elu_cnn", name="tuned", epochs=2, init=str(first / "best.pt")))
    crash_in_epoch(None)
    (first / "best.pt").unlink()
    tuned = main(None, resume=tmp_path / "runs" / "tuned")
    assert json.loads((tuned / "status.json").read_text())["state"] == "finished"


def test_a_trial_run_is_refused_without_the_link_to_its_study(tmp_path, tiny_zip):
    """Training does not import tuning: a run that is a trial is handed its study's link by whoever starts it."""
    cfg = run_config(tmp_path, tiny_zip, name="orphan", trial=f"s#0@sqlite:///{tmp_path / 'study.db'}")
    with pytest.raises(FERError, match="trial s#0@.* of a study: start it with `python -m fer_core train`"):
        main(cfg)
    assert not (tmp_path / "runs" / "orphan").exists()


def test_damaged_checkpoints_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(b"\x80\x04 not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a fer_core checkpoint"):
        load_checkpoint(foreign)


def test_metrics_report_is_consistent():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 7, 500))
    report = metrics_report(y_true, y_pred)
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (7, 7) and cm.sum() == report["n"] == 500
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 500)
    assert [report["per_class"][e]["support"] for e in report["labels"]] == cm.sum(1).tolist()
    happy = report["per_class"]["happy"]
    assert happy["recall"] == pytest.approx(cm[3, 3] / cm[3].sum())
    assert happy["precision"] == pytest.approx(cm[3, 3] / cm[:, 3].sum())


def test_ema_decay_warms_up_and_integer_buffers_are_copied():
    from fer_core.training.optim import build_ema
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = build_ema(model, 0.99)
    ema.update_parameters(model)  # the first update copies
    before = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].num_batches_tracked += 5
    ema.update_parameters(model)  # second update: n = 1, decay (1 + 1) / (10 + 1)
    torch.testing.assert_close(ema.module[0].weight, before + (1 - 2 / 11))
    assert int(ema.module[1].num_batches_tracked) == int(model[1].num_batches_tracked)
    for _ in range(2000):  # long after the warm-up the decay is the one asked for
        ema.update_parameters(model)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    previous = ema.module[0].weight.detach().clone()
    ema.update_parameters(model)
    torch.testing.assert_close(ema.module[0].weight, 0.99 * previous + 0.01 * model[0].weight)


def test_a_tiny_run_trains_with_ema(make_kaggle_zip, tmp_path):
    run = main(TrainConfig(data=str(make_kaggle_zip()), out=str(tmp_path), epochs=2, batch_size=16, tta_views=2,
                           ema=0.99))
    assert (run / "eval.json").is_file() and "ema" in load_checkpoint(run / "last.pt")


def test_a_teacher_that_is_no_model_is_refused_before_the_run_folder_takes_the_name(make_kaggle_zip, tmp_path, capsys):
    from fer_core.cli import main
    junk = tmp_path / "teacher.pt"
    junk.write_bytes(b"not a checkpoint")
    runs = tmp_path / "runs"
    code = main(["train", "--data", str(make_kaggle_zip()), "--epochs", "1", "--teacher", str(junk), "--name", "kept",
                 "--out", str(runs)])
    err = capsys.readouterr().err
    assert code == 1 and "not a readable checkpoint" in err and "Traceback" not in err
    assert not (runs / "kept").exists()  # the name is still free


def test_training_in_process_gives_the_signal_handlers_back(make_kaggle_zip, tmp_path):
    import signal

    from fer_core.training.config import TrainConfig
    from fer_core.training.train import main as train
    def mine(*_):
        return None
    previous = {sig: signal.signal(sig, mine) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        train(TrainConfig(data=str(make_kaggle_zip()), out=str(tmp_path), epochs=1, batch_size=16, tta_views=2))
        assert signal.getsignal(signal.SIGTERM) is mine and signal.getsignal(signal.SIGINT) is mine
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

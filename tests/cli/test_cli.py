"""The `python -m fer_core` contract: JSON shapes, exit codes, one-line errors."""
import json
import subprocess
import sys

import pytest

from fer_core.cli import main
from fer_core.labels import EMOTIONS
from fer_core.models.precision import cpu_supports_bf16

from tests.conftest import REPO


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fer_core", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def test_data_report_json(make_kaggle_zip, capsys):
    assert main(["data", "report", "--data", str(make_kaggle_zip()), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["splits"]["train"]["counts"] == dict.fromkeys(EMOTIONS, 6)
    assert report["splits"]["test"]["total"] == 21 and report["splits"]["val"]["imbalance_ratio"] == 1.0


def test_data_report_text(make_fer_csv, capsys):
    assert main(["data", "report", "--data", str(make_fer_csv())]) == 0
    out = capsys.readouterr().out
    assert "disgust" in out and "imbalance" in out


def test_evaluate_json_contract(make_kaggle_zip, tiny_checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--data", str(make_kaggle_zip()),
                 "--split", "val", "--tta", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"n", "accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "labels", "tta"} <= set(report)
    assert report["n"] == 21 and report["tta"] is True and report["labels"] == list(EMOTIONS)
    cm = report["confusion_matrix"]
    assert sum(map(sum, cm)) == 21
    assert report["accuracy"] == pytest.approx(sum(cm[i][i] for i in range(7)) / 21)
    assert set(report["per_class"]) == set(EMOTIONS)
    assert set(report["per_class"]["fear"]) == {"precision", "recall", "f1", "support"}


def test_errors_are_one_line_with_exit_1(tmp_path):
    result = run_cli("data", "report", "--data", tmp_path / "missing.zip")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: dataset not found")
    assert "Traceback" not in result.stderr


def test_missing_checkpoint_is_one_line(tmp_path, make_kaggle_zip):
    result = run_cli("evaluate", "--checkpoint", tmp_path / "nope.pt", "--data", make_kaggle_zip())
    assert result.returncode == 1 and result.stderr.startswith("error: checkpoint not found")


@pytest.mark.parametrize("args", [["train", "--arch", "no_such_net"], ["evaluate", "--split", "train"],
                                  ["train", "--epochs", "0"], ["frobnicate"], []])
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_train_cli_writes_a_run_and_prints_its_folder(make_kaggle_zip, tmp_path):
    result = run_cli("train", "--arch", "elu_cnn", "--data", make_kaggle_zip(), "--epochs", "1", "--batch-size", "16",
                     "--out", tmp_path, "--name", "cli-run", "--tta-views", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("cli-run")
    assert (tmp_path / "cli-run" / "eval.json").exists()
    assert "epoch 1/1" in result.stderr and "img/s" in result.stderr


def test_ship_writes_half_precision_checkpoint_and_card(make_kaggle_zip, tmp_path):
    from fer_core.cards.model_cards import load_cards, ship_run
    from fer_core.training.config import TrainConfig
    from fer_core.training.train import main as train
    run = train(TrainConfig(arch="fer_vgg_small", data=str(make_kaggle_zip()), out=str(tmp_path), epochs=1,
                            batch_size=16, tta_views=2))
    ship_run(run, "candidate", models_dir=tmp_path / "models", notes="unit test")
    (card,) = load_cards(tmp_path / "models")
    assert card["arch"] == "fer_vgg_small" and card["checkpoint"] == "candidate.pt"
    assert card["metrics"]["test"]["tta"]["n"] == 21 and len(card["learning_curve"]) == 1
    assert card["hardware"].startswith("CPU") and card["training_seconds"] > 0


def test_ship_card_only_writes_a_reference_card_that_compare_and_the_table_show(make_kaggle_zip, tmp_path, capsys,
                                                                               monkeypatch):
    from fer_core.cards.catalog import card_entries
    from fer_core.cards.model_cards import load_cards
    from fer_core.cards.results_table import results_table
    from fer_core.training.config import TrainConfig
    from fer_core.training.train import main as train
    run = train(TrainConfig(arch="seed_cnn", data=str(make_kaggle_zip()), out=str(tmp_path), epochs=2,
                            epoch_size=16, batch_size=8, tta_views=2, balance="weighted"))
    models = tmp_path / "models"
    models.mkdir()
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    assert main(["ship", str(run), "--name", "ref-seed_cnn", "--card-only", "--notes", "CPU reference"]) == 0
    assert "checkpoint not shipped" in capsys.readouterr().out
    assert sorted(p.name for p in models.iterdir()) == ["ref-seed_cnn.json", "ref-seed_cnn.predictions.npz"]  # no weights
    (card,) = load_cards(models)
    evaluation = json.loads((run / "eval.json").read_text())
    assert card["checkpoint"] is None and card["metrics"]["test"] == evaluation["test"]
    (entry,) = card_entries(models)
    assert entry.checkpoint is None and "checkpoint not shipped" in entry.note and entry.report("test", True)
    row = results_table([card]).splitlines()[2]
    assert "| ref-seed_cnn | seed_cnn |" in row and "| weighted |" in row and "2 x 16 images" in row


@pytest.mark.slow
def test_bench_prints_figures(make_kaggle_zip, capsys):
    assert main(["bench", "--data", str(make_kaggle_zip()), "--arch", "fer_vgg_small", "--seconds", "0.1",
                 "--device", "cpu", "--batch-size", "8", "--no-predict"]) == 0
    out = capsys.readouterr().out
    assert "first decode" in out and "cached load" in out
    assert "train    fer_vgg_small" in out and "TTA 10 views" in out and "images/s" in out
    peak = "measured bfloat16 matmul peak" if cpu_supports_bf16() else "measured float32 matmul peak"
    assert "GFLOP per image" in out and "utilisation" in out and peak in out
    assert "fp32" in out and "infer    fer_vgg_small  batch    1:" in out and "ms/face" in out
    if cpu_supports_bf16():  # both precisions side by side, with the ratio
        assert "bf16/fp32" in out and out.count("bf16/fp32 speed") == 6
        assert "agree    default model, PrivateTest (21 images), TTA off: bf16 and fp32 top-1 agree on" in out


@pytest.mark.slow
def test_bench_training_times_each_option_against_the_default(capsys):
    assert main(["bench", "training", "--arch", "seed_cnn", "--seconds", "0.01", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "machine: " in out and out.count("images/s") == 7
    assert "contiguous layout" in out and "random 40x40 crops" in out and "1 thread" in out


def test_bench_predict_times_pytorch_and_onnxruntime_side_by_side(capsys):
    assert main(["bench", "predict", "--repeats", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for backend in ("PyTorch", "ONNX Runtime"):
        assert f"{backend}, TTA off" in out and f"{backend}, TTA 10 views" in out
    assert "models/default.pt" in out and "1 threads" in out


@pytest.mark.slow
def test_bench_time_to_accuracy_trains_and_reports_when_the_target_is_reached(make_kaggle_zip, capsys):
    args = ["bench", "--data", str(make_kaggle_zip()), "--arch", "seed_cnn", "--seconds", "0.1", "--device", "cpu",
            "--batch-size", "8", "--no-predict", "--epochs", "2", "--epoch-size", "16"]
    assert main([*args, "--time-to-accuracy", "0.0"]) == 0
    assert "reached 0% PrivateTest" in capsys.readouterr().out
    assert main([*args, "--time-to-accuracy", "1.0"]) == 0
    assert "did not reach 100% PrivateTest in 2 epochs" in capsys.readouterr().out
    assert main([*args, "--time-to-accuracy", "0.0", "1.0"]) == 0
    out = capsys.readouterr().out
    assert "reached 0% PrivateTest" in out and "did not reach 100% PrivateTest" in out
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--time-to-accuracy", "70"])  # a percentage where a fraction belongs
    assert exit_.value.code == 2 and "fraction in [0, 1]" in capsys.readouterr().err


def test_data_audit_writes_the_exclusion_list(make_kaggle_zip, tmp_path, capsys):
    duplicate = ("train/sad/Training_4242.jpg", None, 4)
    source = make_kaggle_zip()
    import zipfile
    with zipfile.ZipFile(source) as zf:  # plant an exact duplicate with another label
        data = zf.read(next(n for n in zf.namelist() if n.startswith("train/happy/")))
    with zipfile.ZipFile(source, "a") as zf:
        zf.writestr(duplicate[0], data)
    out = tmp_path / "exclude.txt"
    assert main(["data", "audit", "--data", str(source), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exact duplicates" in text and "1 with different labels" in text
    assert "train/sad/Training_4242.jpg" in out.read_text().splitlines()
    assert main(["data", "audit", "--data", str(source), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["exact"]["label_conflicts"] == 1


def test_bench_reads_time_to_accuracy_from_a_finished_run(tmp_path, capsys):
    run = tmp_path / "long-run"
    run.mkdir()
    lines = [{"epoch": e, "train_loss": 1.0, "train_accuracy": 0.6, "val_loss": 1.0, "val_accuracy": acc,
              "seconds": 100.0, "images_per_s": 700.0, "test_accuracy": acc, "precision": "bf16",
              "test_tta_accuracy": acc + 0.012, "test_tta_views": 2}
             for e, acc in ((1, 0.5), (2, 0.685), (3, 0.69))]
    (run / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    assert main(["bench", "--from-run", str(run), "--time-to-accuracy", "0.68", "0.70"]) == 0
    out = capsys.readouterr().out
    assert "reached 68% PrivateTest (68.50%) after epoch 2: 200 s of training" in out
    assert "did not reach 70% PrivateTest in 3 epochs (300 s of training; best 69.00%)" in out
    assert "reached 70% PrivateTest with 2-view TTA (70.20%) after epoch 3: 300 s of training" in out


@pytest.mark.parametrize("argv", [["train", "--arch", "vgg"], ["evaluate", "--tta-views", "50"],
                                  ["predict", "x.jpg", "--tta-views", "0"], ["ensemble", "a.pt", "--tta-views", "x"]])
def test_a_usage_error_is_one_line_pointing_to_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: ") and "--help" in err and "usage:" not in err


def test_a_closed_pipe_ends_quietly(make_kaggle_zip):
    """`data report --json | head`: the reader (here `true`) is gone before the report is written."""
    cmd = f"{sys.executable} -m fer_core data report --json --data {make_kaggle_zip()} | true"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr and result.returncode == 0


def test_evaluate_sets_its_figure_beside_the_model_cards_and_says_what_ran(compare_world, capsys, monkeypatch):
    from fer_core.cli import main
    monkeypatch.delenv("FER_ENGINE", raising=False)  # evaluate on FER2013 runs PyTorch unless told otherwise
    checkpoint = compare_world["models"] / "reference-small.pt"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(compare_world["data"]), "--tta",
                 "--tta-views", "2"]) == 0
    out = capsys.readouterr().out
    assert "PyTorch" in out.splitlines()[0] and "its model card says" in out and "the same setting" in out


def test_the_time_estimate_measures_with_the_threads_a_training_job_gets(monkeypatch):
    import torch

    from fer_core.training.config import TrainConfig
    from fer_core.training.probe import expected_training
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the dashboard keeps for itself
    try:
        estimate = expected_training(TrainConfig(epochs=1), seconds=0.2)
        assert "CPU (2 threads)" in estimate["device"] and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)

"""Run names stay inside the runs folder, one trainer per run, and damaged run files break nothing else.

Each test is one case of the data-loss issue: a name that escapes, a corrupted registry row, a second
trainer on one run, a name collision, run files that lack fields, a dataset path that is not a file.
"""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fer_core.cli import main as cli
from fer_core.data.sources import check_dataset, resolve_data_path
from fer_core.errors import DataError, FERError
from fer_core.paths import BadNameError, UnsafePathError
from fer_core.rundir.folder import RunBusyError, TrainerLock, log_tail, run_path
from fer_core.runs.registry import Registry
from fer_core.training.config import TrainConfig
from fer_core.training.train import main as train

REPO = Path(__file__).resolve().parents[2]
TINY = dict(arch="fer_vgg_small", batch_size=16, tta_views=2, rotate=5, device="cpu")
BAD_NAMES = ["../escape", "a/../..", "x/..", "/abs/path", "a/b", "", "n" * 300, ".", "..", "-flag", "sp ace",
             "registry.sqlite-wal", "worker-cpu.lock"]


@pytest.fixture
def tiny_zip(make_kaggle_zip):
    return str(make_kaggle_zip(per_class=(6, 3, 3)))


@pytest.fixture
def nest(tmp_path):
    """A runs folder with a canary beside it and a finished-looking run inside it."""
    runs = tmp_path / "project" / "runs"
    (runs / "keep-me").mkdir(parents=True)
    (runs / "keep-me" / "best.pt").write_bytes(b"weights")
    canary = tmp_path / "project" / "canary.txt"
    canary.write_text("the user's checkout")
    return runs, canary


# ----------------------------------------------------------------------------- names

@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_run_name_is_refused_at_submit_with_one_line(nest, tiny_zip, name):
    runs, canary = nest
    registry = Registry(runs)
    with pytest.raises(BadNameError) as refused:
        registry.submit(TrainConfig(data=tiny_zip, name=name, **TINY), start_worker=False)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 250
    assert [r.id for r in registry.list()] == ["keep-me"]  # the fixture's own folder, shown as damaged
    assert sorted(p.name for p in (runs.parent).iterdir()) == ["canary.txt", "runs"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_run_name_is_refused_by_train_name(nest, tiny_zip, name, capsys):
    runs, _ = nest
    code = cli(["train", "--data", tiny_zip, "--out", str(runs), f"--name={name}", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "run name" in err or (name == "" and "--name was given an empty value" in err)
    assert sorted(p.name for p in runs.iterdir()) == ["keep-me"]
    assert sorted(p.name for p in runs.parent.iterdir()) == ["canary.txt", "runs"]


def test_good_names_pass_and_stay_inside(tmp_path):
    for name in ("run-1", "fer_vgg.e80", "A_b-c.9", "n" * 100):
        assert run_path(tmp_path, name) == tmp_path / name


def test_a_symlink_out_of_the_runs_folder_is_refused(nest, tmp_path):
    runs, canary = nest
    (runs / "link").symlink_to(canary.parent)
    with pytest.raises(UnsafePathError, match="outside"):
        run_path(runs, "link")


# ----------------------------------------------------------------------------- delete never leaves the runs folder

def _plant_row(registry: Registry, run_id: str, state: str = "failed") -> None:
    """A registry row as a damaged or hand-edited database could hold it."""
    with sqlite3.connect(registry.index.db_path) as db:
        db.execute("INSERT INTO runs (id, arch, state, slot, created, epochs, config) VALUES (?, 'x', ?, 'cpu', "
                   "'2026-01-01T00:00:00+00:00', 1, '{}')", (run_id, state))


@pytest.mark.parametrize("row_id", ["x/..", "y/../..", "../project", "/tmp", "."])
def test_delete_of_a_corrupted_row_removes_only_the_row(nest, row_id):
    runs, canary = nest
    registry = Registry(runs)
    _plant_row(registry, row_id)
    assert any(r.id == row_id and "only be deleted" in r.error for r in registry.list())
    registry.delete(row_id)
    assert canary.read_text() == "the user's checkout"
    assert (runs / "keep-me" / "best.pt").exists() and registry.index.db_path.exists()
    assert [r.id for r in registry.list()] == ["keep-me"]


def test_delete_through_a_symlinked_run_leaves_its_target(nest):
    runs, canary = nest
    registry = Registry(runs)
    (runs / "link").symlink_to(canary.parent)
    _plant_row(registry, "link")
    registry.delete("link")
    assert canary.exists() and (runs / "keep-me").exists()


def test_runs_delete_cli_of_a_corrupted_row_keeps_the_project(nest, capsys):
    runs, canary = nest
    _plant_row(Registry(runs), "y/../..")
    assert cli(["runs", "delete", "y/../..", "--runs-dir", str(runs)]) == 0
    assert canary.exists() and (runs / "keep-me" / "best.pt").exists()


# ----------------------------------------------------------------------------- one trainer per run

def _crashed_run(tmp_path, tiny_zip, crash_in_epoch, name="crashed") -> Path:
    """A run that failed in epoch 2 (a simulated out-of-memory), with last.pt after epoch 1."""
    crash_in_epoch(2)
    with pytest.raises(MemoryError):
        train(TrainConfig(data=tiny_zip, epochs=3, out=str(tmp_path / "runs"), name=name, **TINY))
    crash_in_epoch(None)
    return tmp_path / "runs" / name


def test_resume_is_refused_while_a_trainer_holds_the_run(tmp_path, tiny_zip, crash_in_epoch):
    folder = _crashed_run(tmp_path, tiny_zip, crash_in_epoch)
    registry = Registry(folder.parent)
    registry.list()  # adopts the CLI run
    assert registry.get("crashed").state == "failed"
    status_before = (folder / "status.json").read_text()
    with TrainerLock(folder):  # as a `train --resume` from the CLI holds it
        assert registry.get("crashed").state == "failed"
        assert next(r for r in registry.list() if r.id == "crashed").state == "running"
        with pytest.raises(FERError, match="being trained"):
            registry.resume("crashed")
        with pytest.raises(RunBusyError, match="already being trained"):
            train(None, resume=folder)
        with pytest.raises(FERError, match="running"):
            registry.delete("crashed")
        assert (folder / "status.json").read_text() == status_before  # the refused trainer wrote nothing
    assert registry.get("crashed").state == "running"  # until the registry looks again
    # the lock is gone and the (simulated) trainer wrote nothing: status.json's last word stands
    assert next(r for r in registry.list() if r.id == "crashed").state == "failed"


def test_the_registry_follows_a_resume_finished_from_the_cli(tmp_path, tiny_zip, crash_in_epoch):
    folder = _crashed_run(tmp_path, tiny_zip, crash_in_epoch)
    registry = Registry(folder.parent)
    (run,) = registry.list()
    assert run.state == "failed" and run.epochs_done == 1
    train(None, resume=folder)  # what `python -m fer_core train --resume` does
    (run,) = registry.list()
    assert run.state == "finished" and run.epochs_done == 3 and run.test_accuracy is not None
    with pytest.raises(FERError, match="finished"):
        registry.resume("crashed")


def test_a_second_cli_trainer_on_a_training_run_exits_with_one_line(tmp_path, tiny_zip, crash_in_epoch):
    folder = _crashed_run(tmp_path, tiny_zip, crash_in_epoch)
    with TrainerLock(folder):
        result = subprocess.run([sys.executable, "-m", "fer_core", "train", "--resume", str(folder)], cwd=REPO,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: run crashed is already being trained")
    assert "Traceback" not in result.stderr


def test_resume_with_a_corrupt_status_file_trains_on(tmp_path, tiny_zip, crash_in_epoch):
    folder = _crashed_run(tmp_path, tiny_zip, crash_in_epoch)
    (folder / "status.json").write_text('{"state": "fail')
    train(None, resume=folder)
    assert json.loads((folder / "status.json").read_text())["state"] == "finished"


# ----------------------------------------------------------------------------- name collisions

def test_a_taken_name_gets_a_message_not_an_integrity_error(tmp_path, tiny_zip, monkeypatch):
    registry = Registry(tmp_path / "runs")
    registry.submit(TrainConfig(data=tiny_zip, name="mine", **TINY), start_worker=False)  # queued: no folder yet
    with pytest.raises(ValueError, match="name 'mine' is taken"):
        registry.submit(TrainConfig(data=tiny_zip, name="mine", **TINY), start_worker=False)
    # two tabs at once: the other one inserts between this one's check and its insert
    monkeypatch.setattr(registry.index, "exists", lambda run_id: False)
    with pytest.raises(ValueError, match="name 'mine' is taken"):
        registry.submit(TrainConfig(data=tiny_zip, name="mine", **TINY), start_worker=False)
    assert [r.id for r in registry.list()] == ["mine"]


# ----------------------------------------------------------------------------- run files that lack fields

def _finished_run(runs: Path, name: str) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"arch": "fer_vgg_small", "epochs": 1, "name": name}))
    (folder / "status.json").write_text(json.dumps({"state": "finished", "pid": None, "updated": "2026-01-01"}))
    return folder


@pytest.mark.parametrize("damage", [
    {"eval.json": '{"test": {}}'},
    {"eval.json": '{"val": {"plain": {"accuracy": 0.5}}, "test": {"plain": {}, "tta": {}}}'},
    {"eval.json": '[1, 2]'},
    {"metrics.jsonl": '{"epoch": 1, "train_loss": 1.0, "seconds": 2.0}\n'},
    {"status.json": '{"state": "running", "pid": "not a number"}'},
])
def test_a_run_file_missing_fields_marks_that_run_damaged_and_the_rest_still_shows(tmp_path, monkeypatch, damage,
                                                                                   capsys):
    from dashboard.compare.views import kind_label, summary_rows
    from fer_core.cards.catalog import all_entries
    runs = tmp_path / "runs"
    for file, text in damage.items():
        (_finished_run(runs, "damaged") / file).write_text(text)
    registry = Registry(runs)
    (run,) = registry.list()
    assert run.id == "damaged" and run.error.startswith("damaged run files: ")
    assert cli(["runs", "list", "--json", "--runs-dir", str(runs)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["id"] == "damaged" and row["error"].startswith("damaged run files: ")
    entries = all_entries(runs, REPO / "models")
    assert {"default", "ref-fer_vgg"} <= {e.name for e in entries if kind_label(e) in ("shipped model", "reference card")}
    summary_rows(entries)  # the Compare table is built from every entry
    if "eval.json" in damage or "metrics.jsonl" in damage:
        assert "damaged: " in next(e for e in entries if e.name == "damaged").note


@pytest.mark.parametrize("page", ["dashboard/Home.py", "pages/train.py", "pages/compare.py"])
def test_pages_open_with_a_damaged_run(tmp_path, monkeypatch, make_kaggle_zip, page):
    from streamlit.testing.v1 import AppTest
    runs = tmp_path / "runs"
    (_finished_run(runs, "damaged") / "eval.json").write_text('{"test": {}}')
    (_finished_run(runs, "bad-curve") / "metrics.jsonl").write_text('{"epoch": 1}\n')
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    at = AppTest.from_file(str(REPO / page), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(str(getattr(el, "value", "")) for el in at.main)
    if page == "pages/compare.py":
        assert "No runs and no model cards yet" not in shown
        assert {"damaged", "bad-curve", "default ★"} <= set(at.dataframe[0].value["name"])  # ★: the default
    if page == "pages/train.py":  # each damaged run by name, with what is wrong, and the other still there
        headings = " ".join(m.value for m in at.markdown)
        assert "**damaged**" in headings and "**bad-curve**" in headings
        errors = " ".join(e.value for e in at.error)
        assert "eval.json: val.plain is missing" in errors and "metrics.jsonl line 1 lacks" in errors


def test_the_interrupted_note_has_no_progress_bar_clutter(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("run x: fer_vgg_small on CPU\nepoch 1/3: loss 1.8 acc 0.3 | val loss 1.6 acc 0.35 | 800 img/s, 35s\n"
                   "epoch 2/3:   0%|          | 0/225 [00:00<?, ?batch/s]\r"
                   "epoch 2/3:  40%|####      | 90/225 [00:14<00:21, 6.3batch/s, acc=0.44, img_s=761, loss=1.54]\r")
    tail = log_tail(log, 3)
    assert "epoch 1/3: loss 1.8" in tail and "%|" not in tail and "batch/s" not in tail


# ----------------------------------------------------------------------------- dataset paths

def test_a_path_that_is_neither_file_nor_folder_gets_one_line(tmp_path, capsys):
    with pytest.raises(DataError, match="neither a file nor a folder"):
        resolve_data_path("/dev/zero")
    assert cli(["data", "report", "--data", "/dev/zero"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a file nor a folder" in err
    assert cli(["train", "--data", "/dev/zero", "--epochs", "1", "--out", str(tmp_path)]) == 1
    assert "neither a file nor a folder" in capsys.readouterr().err


def test_pages_open_with_dev_zero_as_the_dataset(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA", "/dev/zero")
    for page in ("dashboard/Home.py", "pages/dataset.py", "pages/train.py"):
        at = AppTest.from_file(str(REPO / page), default_timeout=120).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    home = AppTest.from_file(str(REPO / "dashboard/Home.py"), default_timeout=120).run()
    assert any("neither a file nor a folder" in e.value for e in home.error)
    assert len(home.text_input) >= 1  # the path box is there to fix it


@pytest.mark.parametrize("make_bad", [
    lambda d: Path("/etc/passwd"),
    lambda d: (d / "notes.csv", (d / "notes.csv").write_text("a,b\n1,2\n"))[0],
    lambda d: (d / "photos.zip", __import__("zipfile").ZipFile(d / "photos.zip", "w").writestr("cat/1.jpg", b"x"))[0],
])
def test_the_train_form_refuses_a_file_that_is_not_fer2013_before_queueing(tmp_path, make_bad, make_kaggle_zip):
    with pytest.raises(DataError):
        check_dataset(make_bad(tmp_path))
    assert check_dataset(make_kaggle_zip()).suffix == ".zip"


def test_the_train_page_refuses_a_file_that_is_not_fer2013(tmp_path, monkeypatch, make_kaggle_zip):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    at = AppTest.from_file(str(REPO / "pages/train.py"), default_timeout=120).run()
    at.text_input(key="new_data").set_value("/etc/passwd")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("Not started" in e.value and "not a FER2013 dataset" in e.value for e in at.error)
    assert Registry(tmp_path / "runs").list() == []


def test_the_worker_fails_damaged_rows_alone_and_writes_nothing_outside(nest, tiny_zip):
    from fer_core.runs.worker import run_worker
    runs, canary = nest
    registry = Registry(runs)
    _plant_row(registry, "x/..", state="queued")
    _plant_row(registry, "bad-config", state="queued")
    with sqlite3.connect(registry.index.db_path) as db:
        db.execute("UPDATE runs SET config = 'not json' WHERE id = 'bad-config'")
    run_worker(runs, "cpu", poll_s=0.05)
    rows = {r.id: r for r in registry.list()}
    assert rows["x/.."].state == "damaged" and rows["bad-config"].state == "failed"
    assert "not started" in rows["bad-config"].error
    assert sorted(p.name for p in runs.parent.iterdir()) == ["canary.txt", "runs"]
    assert not (REPO / "train.log").exists()
    registry.delete("x/..")
    assert canary.exists()


def test_status_fields_of_the_wrong_kind_are_damage_not_a_crash(tmp_path):
    runs = tmp_path / "runs"
    (_finished_run(runs, "odd") / "status.json").write_text(json.dumps(
        {"state": "finished", "updated": 5, "error": {"x": 1}, "device": ["cpu"], "pid": True}))
    (run,) = Registry(runs).list()
    assert run.error.startswith("damaged run files: status.json")


def test_resume_drops_damaged_metric_lines(tmp_path, tiny_zip, crash_in_epoch):
    folder = _crashed_run(tmp_path, tiny_zip, crash_in_epoch)
    with open(folder / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 7}\nnot json\n')
    train(None, resume=folder)
    epochs = [json.loads(s)["epoch"] for s in (folder / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_a_model_card_missing_fields_is_noted_and_the_others_show(tmp_path):
    import shutil

    from fer_core.cards.catalog import card_entries
    from fer_core.cards.results_table import results_table
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(REPO / "models" / "default.json", models / "default.json")
    card = json.loads((REPO / "models" / "default.json").read_text())
    del card["metrics"]["test"]["tta"]
    card.pop("name")
    (models / "broken.json").write_text(json.dumps(card))
    entries = {e.name: e for e in card_entries(models)}
    assert "broken" in entries and entries["broken"].note.startswith("damaged: broken.json: test.tta")
    assert entries["default"].report("test", True)
    table = results_table(__import__("fer_core.cards.model_cards", fromlist=["load_cards"]).load_cards(models))
    assert "| default |" in table and "| broken |" not in table

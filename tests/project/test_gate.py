"""One gate for names and paths (issue 33): every command and form that takes a name refuses the same bad
names with nothing written; writes are atomic and a full or read-only disk is one line; archives have limits;
`runs cancel` signals only the trainer-lock holder; model files are confined and bounded; bad files are one
line each while the other files of a command go on.
"""
from __future__ import annotations

import errno
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from fer_core import paths
from fer_core.cli import main as cli
from fer_core.errors import CheckpointError, DataError, FERError
from fer_core.paths import BadNameError, StorageError, atomic_write, check_name, publish
from fer_core.runs.registry import Registry

from tests.conftest import REPO, kaggle_entries

BAD_NAMES = ["../x", "a/../..", "x/..", "/abs", "a/b", ".", "..", "", "n" * 300, "new\nline"]


def one_line_error(text: str) -> bool:
    return text.startswith("error: ") and text.count("\n") == 1 and "Traceback" not in text


def ends_in_one_error_line(text: str) -> bool:
    """What `train` prints on stderr: its progress, then one error line and no traceback."""
    lines = text.rstrip("\n").replace("\r", "\n").split("\n")  # the progress bar redraws with \r
    return lines[-1].startswith("error: ") and sum(ln.startswith("error") for ln in lines) == 1 and "Traceback" not in text


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project with empty models/ and runs/ and a canary beside them; the paths' environment points there."""
    root = tmp_path / "project"
    for folder in ("models", "runs"):
        (root / folder).mkdir(parents=True)
    (root / "canary.txt").write_text("the user's checkout")
    monkeypatch.setenv("FER_MODELS_DIR", str(root / "models"))
    monkeypatch.setenv("FER_RUNS_DIR", str(root / "runs"))
    return root


# ----------------------------------------------------------------------------- one validator of names

@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_validator_refuses_every_bad_name_in_one_line(name):
    with pytest.raises(BadNameError) as refused:
        check_name(name, "model name")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 250


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize("command", ["ship", "ship --card-only", "ensemble", "train"])
def test_every_command_that_takes_a_name_refuses_it_and_writes_nothing(project, compare_world, name, command, capsys):
    before = tree(project.parent)
    run = str(compare_world["runs"] / "small-a")
    data = str(compare_world["data"])
    argv = {"ship": ["ship", run, "--data", data],
            "ship --card-only": ["ship", run, "--card-only", "--data", data],
            "ensemble": ["ensemble", f"{run}/best.pt", str(compare_world["runs"] / "elu-b" / "best.pt"), "--data", data],
            "train": ["train", "--data", data, "--out", str(project / "runs"), "--epochs", "1"]}[command]
    code = cli([*argv, f"--name={name}"])
    err = capsys.readouterr().err
    assert code in (1, 2) and one_line_error(err) and "name" in err
    assert tree(project.parent) == before and (project / "canary.txt").read_text() == "the user's checkout"


def test_a_symlink_planted_in_models_is_not_followed_out(project, compare_world, capsys):
    outside = project.parent / "elsewhere"
    outside.mkdir()
    (project / "models" / "trap.json").symlink_to(outside / "trap.json")
    code = cli(["ship", str(compare_world["runs"] / "small-a"), "--name", "trap", "--data", str(compare_world["data"])])
    assert code == 1 and "outside" in capsys.readouterr().err and list(outside.iterdir()) == []


@pytest.mark.parametrize("name", BAD_NAMES)
def test_the_sweep_name_goes_through_the_same_gate(project, make_kaggle_zip, name):
    from fer_core.training.config import TrainConfig
    registry = Registry(project / "runs")
    with pytest.raises(BadNameError):
        registry.submit_sweep(TrainConfig(data=str(make_kaggle_zip()), epochs=1), {"lr": [0.01]}, name=name,
                              start_worker=False)
    assert registry.list() == []


def test_the_train_form_refuses_each_bad_name(project, make_kaggle_zip, monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    at = AppTest.from_file(str(REPO / "pages" / "train.py"), default_timeout=120).run()
    for name in [n for n in BAD_NAMES if n and "\n" not in n]:  # blank means "no name"; an input holds no newline
        next(t for t in at.text_input if t.label == "Run name (optional)").set_value(name)
        next(b for b in at.button if b.label == "Start training").click().run()
        assert not at.exception and any("run name" in e.value for e in at.error), (name, [e.value for e in at.error])
    assert Registry(project / "runs").list() == []
    assert sorted(p.name for p in project.iterdir()) == ["canary.txt", "models", "runs"]


def test_the_compare_form_refuses_each_bad_ensemble_name(project, compare_world, monkeypatch):
    from streamlit.testing.v1 import AppTest

    import dashboard.shared.background as background
    monkeypatch.setattr(background, "_POOL", background.TaskPool())
    monkeypatch.setattr(background, "QUICK_WAIT_S", 120.0)
    monkeypatch.setenv("FER_RUNS_DIR", str(compare_world["runs"]))
    monkeypatch.setenv("FER_DATA", str(compare_world["data"]))
    at = AppTest.from_file(str(REPO / "pages" / "compare.py"), default_timeout=120).run()
    at.multiselect(key="ens_members").set_value(["run:small-a", "run:elu-b"]).run()
    at.number_input(key="ens_views").set_value(2).run()
    at.button(key="ens_eval").click().run()
    for name in ["../x", "a/../..", "x/..", "/abs", "a/b", ".", "..", "n" * 300]:
        at.text_input(key="ens_name").input(name).run()
        at.button(key="ens_save").click().run()
        assert not at.exception and any("ensemble name" in e.value for e in at.error), name
    assert list((project / "models").iterdir()) == []
    assert sorted(p.name for p in project.iterdir()) == ["canary.txt", "models", "runs"]


# ----------------------------------------------------------------------------- atomic writes

def test_a_failed_write_leaves_neither_the_file_nor_its_temporary(tmp_path):
    (tmp_path / "card.json").write_text("old")
    with pytest.raises(StorageError, match="disk full .* while writing"):
        with atomic_write(tmp_path / "card.json") as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"] and (tmp_path / "card.json").read_text() == "old"


def test_publish_moves_all_files_or_none(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with publish(tmp_path, ["m.pt", "m.json"]) as stage:
            (stage / "m.pt").write_text("weights")
            raise KeyboardInterrupt  # a stop between the weights and the card
    assert list(tmp_path.iterdir()) == []
    with publish(tmp_path, ["m.pt", "m.json"]) as stage:
        (stage / "m.pt").write_text("weights")
        (stage / "m.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.pt"]


def test_a_ship_stopped_while_measuring_leaves_models_as_it_was(project, compare_world, monkeypatch):
    from fer_core.cards import model_cards
    (project / "models" / "default.pt").write_bytes(b"the old default")

    def killed(*args, **kw):
        raise KeyboardInterrupt
    monkeypatch.setattr(model_cards, "measure_card", killed)
    with pytest.raises(KeyboardInterrupt):
        model_cards.ship_run(compare_world["runs"] / "small-a", "default", data=str(compare_world["data"]),
                             replace=True)
    assert sorted(p.name for p in (project / "models").iterdir()) == ["default.pt"]
    assert (project / "models" / "default.pt").read_bytes() == b"the old default"


def _write_fails_with(exc: BaseException, monkeypatch):
    """torch.save fails as it does on a full disk (or as `exc` says)."""
    import torch

    from fer_core.models import checkpoints
    real_save = torch.save

    def failing(obj, f, *args, **kw):
        if str(f).endswith(".tmp"):
            raise exc
        return real_save(obj, f, *args, **kw)
    monkeypatch.setattr(checkpoints.torch, "save", failing)


def test_disk_full_while_training_is_one_line_a_failed_status_and_no_leftovers(project, make_kaggle_zip, monkeypatch,
                                                                              capsys):
    _write_fails_with(OSError(errno.ENOSPC, "No space left on device"), monkeypatch)
    runs = project / "runs"
    code = cli(["train", "--data", str(make_kaggle_zip()), "--out", str(runs), "--name", "full", "--epochs", "1",
                "--batch-size", "16", "--tta-views", "2"])
    err = capsys.readouterr().err
    assert code == 1 and ends_in_one_error_line(err) and "disk full" in err and ("best.pt" in err or "last.pt" in err)
    status = json.loads((runs / "full" / "status.json").read_text())
    assert status["state"] == "failed" and status["error"].startswith("disk full")
    assert not [p.name for p in (runs / "full").iterdir() if p.name.startswith(".")]
    monkeypatch.undo()
    monkeypatch.setenv("FER_RUNS_DIR", str(runs))
    assert cli(["runs", "list", "--runs-dir", str(runs)]) == 0
    assert "failed" in capsys.readouterr().out


def test_runs_list_works_when_the_registry_cannot_be_written(project, monkeypatch, capsys):
    from fer_core.runs.index import RunIndex
    runs = project / "runs"
    _ended_run(runs, "done")
    Registry(runs).list()
    (runs / "done" / "metrics.jsonl").write_text('{"epoch": 1')  # something to bring up to date

    def full(*args, **kw):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(RunIndex, "update", full)
    monkeypatch.setattr(RunIndex, "insert", full)
    _ended_run(runs, "adopted")  # a CLI run the index cannot take in
    assert cli(["runs", "list", "--runs-dir", str(runs)]) == 0
    out, err = capsys.readouterr()
    assert "done" in out and "adopted" in out and "could not be updated" in err and "Traceback" not in err


def test_runs_list_reads_a_registry_it_cannot_open_for_writing(project, monkeypatch, capsys):
    from fer_core.runs import index as run_index
    runs = project / "runs"
    _ended_run(runs, "done")
    Registry(runs).list()

    def read_only(self):
        raise sqlite3.OperationalError("unable to open database file")
    monkeypatch.setattr(run_index.RunIndex, "_db", read_only)
    monkeypatch.setattr(run_index.RunIndex, "update", lambda *a, **k: read_only(None))
    assert cli(["runs", "list", "--runs-dir", str(runs)]) == 0
    assert "done" in capsys.readouterr().out


def test_a_read_only_runs_folder_is_one_line_for_train(project, make_kaggle_zip, monkeypatch, capsys):
    real_mkdir = Path.mkdir

    def denied(self, *args, **kw):
        if self.parent == project / "runs":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kw)
    monkeypatch.setattr(Path, "mkdir", denied)
    code = cli(["train", "--data", str(make_kaggle_zip()), "--out", str(project / "runs"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 1 and ends_in_one_error_line(err) and "permission denied" in err


def test_a_real_full_disk_if_this_machine_can_mount_one(tmp_path, make_kaggle_zip, capsys):
    small = tmp_path / "small"
    small.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root in a container that allows mounts)")
    try:
        code = cli(["train", "--data", str(make_kaggle_zip()), "--out", str(small), "--name", "full", "--epochs", "1",
                    "--batch-size", "16", "--tta-views", "2", "--arch", "fer_vgg"])  # a checkpoint larger than 2 MB
        err = capsys.readouterr().err
        assert code == 1 and ends_in_one_error_line(err) and "disk full" in err
        assert json.loads((small / "full" / "status.json").read_text())["state"] == "failed"
        assert not [p.name for p in (small / "full").iterdir() if p.name.startswith(".")]
        assert cli(["runs", "list", "--runs-dir", str(small)]) == 0
        code = cli(["train", "--data", str(make_kaggle_zip()), "--out", str(small), "--epochs", "1"])
        assert code == 1 and ends_in_one_error_line(capsys.readouterr().err)
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def _ended_run(runs: Path, name: str) -> Path:
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"arch": "fer_vgg_small", "epochs": 1}))
    (folder / "status.json").write_text(json.dumps({"state": "finished", "started": "2026-01-01T00:00:00+00:00",
                                                    "updated": "2026-01-01T00:01:00+00:00"}))
    return folder


# ----------------------------------------------------------------------------- archives

def _zip(path: Path, members: dict[str, bytes], **kw) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, **kw) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _bomb(path: Path) -> Path:
    """A 1 MB zip holding one member of 1 GiB of zeros, written in chunks (never held in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, \
            zf.open("train/happy/Training_1.jpg", "w", force_zip64=True) as fh:
        chunk = bytes(2**20)
        for _ in range(1024):
            fh.write(chunk)
    return path


def _crc_corrupt(path: Path) -> Path:
    entries = {rel: data for rel, data, _ in kaggle_entries()}
    _zip(path, entries)
    blob = bytearray(path.read_bytes())
    first = next(iter(entries.values()))
    at = bytes(blob).index(first[20:40])  # stored JPEG bytes: flip one inside the first member
    blob[at] ^= 0xFF
    path.write_bytes(bytes(blob))
    return path


def _encrypted(path: Path) -> Path:
    _zip(path, {"train/happy/Training_1.jpg": b"x"})
    blob = bytearray(path.read_bytes())
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the encryption bit in both headers
        at = bytes(blob).index(signature)
        blob[at + flag_at] |= 0x1
    path.write_bytes(bytes(blob))
    return path


BAD_ARCHIVES = {"bomb": (_bomb, "decompresses to"), "crc": (_crc_corrupt, "checksum"),
                "encrypted": (_encrypted, "password-protected")}


@pytest.mark.parametrize("kind", BAD_ARCHIVES)
def test_data_report_refuses_a_bad_archive_in_one_line(tmp_path, kind):
    make, message = BAD_ARCHIVES[kind]
    path = make(tmp_path / f"{kind}.zip")
    code = f"""
import resource, sys
from fer_core.cli import build_parser, main
build_parser()  # torch and the rest imported: what is measured next is the command's own memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
code = main(["data", "report", "--data", {str(path)!r}])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, file=sys.stderr)
sys.exit(code)"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "FER_CACHE_DIR": str(tmp_path / "cache")})
    *lines, grown_mb = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert int(grown_mb) < 200  # MB: nothing was decompressed into memory (the bomb holds 1 GiB)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("kind", BAD_ARCHIVES)
def test_a_bad_upload_is_refused_and_leaves_nothing(tmp_path, data_dir, kind):
    from fer_core.data import save_upload
    make, message = BAD_ARCHIVES[kind]
    with open(make(tmp_path / f"{kind}.zip"), "rb") as upload, pytest.raises(DataError, match=message):
        save_upload(upload)
    assert list(data_dir.iterdir()) == []


def test_an_upload_replaces_a_dataset_only_when_confirmed(data_dir, make_kaggle_zip):
    from fer_core.data import save_upload
    data_dir.mkdir()
    (data_dir / "fer2013.zip").write_bytes(b"the user's working dataset")
    with pytest.raises(DataError, match="confirm"):
        save_upload(io.BytesIO(make_kaggle_zip().read_bytes()))
    assert (data_dir / "fer2013.zip").read_bytes() == b"the user's working dataset"
    with pytest.raises(DataError):  # confirmed, but the upload is bad: the old one stays
        save_upload(io.BytesIO(b"not a zip"), replace=True)
    assert (data_dir / "fer2013.zip").read_bytes() == b"the user's working dataset"
    assert save_upload(io.BytesIO(make_kaggle_zip().read_bytes()), replace=True) == data_dir / "fer2013.zip"
    assert zipfile.is_zipfile(data_dir / "fer2013.zip") and sorted(p.name for p in data_dir.iterdir()) == ["fer2013.zip"]


def test_home_asks_before_replacing_a_dataset(tmp_path, data_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    home = "from dashboard.home.page import render_home\nrender_home()"
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "models"))
    data_dir.mkdir()
    (data_dir / "fer2013.zip").write_bytes(b"kept")
    at = AppTest.from_string(home, default_timeout=60).run()
    assert not at.exception
    assert any(c.label.startswith("Replace the dataset already at") and not c.value for c in at.checkbox)
    (data_dir / "fer2013.zip").unlink()
    at = AppTest.from_string(home, default_timeout=60).run()
    assert not any(c.label.startswith("Replace the dataset") for c in at.checkbox)


def test_a_one_class_dataset_is_refused_for_training(tmp_path, capsys):
    path = _zip(tmp_path / "one.zip", {rel: data for rel, data, label in kaggle_entries() if label == 3})
    code = cli(["train", "--data", str(path), "--out", str(tmp_path / "runs"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 1 and ends_in_one_error_line(err) and "at least two classes" in err


# ----------------------------------------------------------------------------- cancel by lock

@pytest.fixture
def lookalike():
    """A live process that is not a trainer but whose command line says fer_core."""
    proc = subprocess.Popen(["bash", "-c", "sleep 600", "fer_core-lookalike"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _plant(registry: Registry, run_id: str, pid: int, state: str = "running") -> None:
    registry.index.insert(id=run_id, arch="fer_vgg_small", state=state, slot="cpu", created="2026-01-01T00:00:00",
                          started="2026-01-01T00:00:00", pid=pid, config="{}")


def test_cancel_of_a_crafted_row_kills_nothing(project, lookalike, capsys):
    runs = project / "runs"
    _ended_run(runs, "crafted")
    registry = Registry(runs)
    _plant(registry, "crafted", lookalike.pid)
    (runs / "crafted" / "trainer.lock").write_text(str(lookalike.pid))  # even a lock file naming it
    code = cli(["runs", "cancel", "crafted", "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 1 and one_line_error(err) and "nothing to cancel" in err
    time.sleep(0.3)
    assert lookalike.poll() is None


def test_cancel_signals_the_process_that_holds_the_lock(project, lookalike):
    runs = project / "runs"
    folder = _ended_run(runs, "training")
    (folder / "status.json").write_text(json.dumps({"state": "running"}))  # a trainer at work
    holder = subprocess.Popen([sys.executable, "-c", f"""
import time
from fer_core.rundir.folder import TrainerLock
lock = TrainerLock({str(folder)!r}).acquire()
print("held", flush=True)
time.sleep(600)"""], cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        registry = Registry(runs)
        assert registry.list()[0].state == "running"
        registry.index.update("training", state="running", pid=lookalike.pid)  # a wrong PID in the row
        registry.cancel("training")
        assert holder.wait(timeout=10) == -signal.SIGTERM
        assert lookalike.poll() is None
    finally:
        holder.kill()
        holder.wait()


# ----------------------------------------------------------------------------- model files

def _ensemble_card(folder: Path, members) -> Path:
    card = folder / "crafted.json"
    card.write_text(json.dumps({"format": "fer_core.model_card/1", "kind": "ensemble", "arch": "ensemble",
                                "name": "crafted", "members": members, "tta_views": 2}))
    return card


@pytest.mark.parametrize("members,message", [
    ([{"checkpoint": "/dev/zero"}, {"checkpoint": "/dev/zero"}], "outside"),
    ([{"checkpoint": "../../../../../../etc/passwd"}], "outside"),
    ([{"name": "no checkpoint"}], "malformed"),
    ("members.pt", "malformed"),
    (["a.pt", "b.pt"], "malformed"),
    ([{"checkpoint": "fifo"}], "not a regular file"),
    ([{"checkpoint": "big.pt"}], "MB"),
])
def test_ensemble_members_are_confined_bounded_and_checked_before_reading(tmp_path, members, message, capsys):
    from fer_core.models.loading import load_model, load_onnxruntime
    os.mkfifo(tmp_path / "fifo")
    with open(tmp_path / "big.pt", "wb") as fh:  # sparse: no disk used
        fh.truncate(3 * 2**30)
    card = _ensemble_card(tmp_path, members)
    for load in (load_model, load_onnxruntime):
        with pytest.raises(CheckpointError, match=message):
            load(card)
    assert cli(["evaluate", "--checkpoint", str(card), "--data", "/nonexistent"]) == 1
    assert one_line_error(capsys.readouterr().err)


def test_a_member_outside_the_card_folder_is_refused_even_when_it_is_a_checkpoint(tmp_path, tiny_checkpoint):
    from fer_core.models.loading import load_model
    models = tmp_path / "models"
    models.mkdir()
    card = _ensemble_card(models, [{"checkpoint": str(tiny_checkpoint)}, {"checkpoint": str(tiny_checkpoint)}])
    with pytest.raises(CheckpointError, match="outside"):
        load_model(card)


def test_predict_page_shows_a_malformed_card_as_a_message(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    card = _ensemble_card(tmp_path, "not a list")
    at = AppTest.from_file(str(REPO / "pages" / "predict.py"), default_timeout=120).run()
    at.selectbox(key="model").select("Another checkpoint file…").run()
    at.text_input(key="checkpoint_path").input(str(card)).run()
    assert not at.exception and any("malformed" in e.value for e in at.error)


def test_export_never_overwrites_what_is_not_an_onnx_file(tmp_path, tiny_checkpoint, capsys):
    precious = tmp_path / "default.pt"
    precious.write_bytes(b"weights")
    assert cli(["export", str(tiny_checkpoint), "--onnx", str(precious)]) == 1
    assert precious.read_bytes() == b"weights" and one_line_error(capsys.readouterr().err)
    assert cli(["export", str(tiny_checkpoint), "--onnx", str(tmp_path)]) == 1
    assert one_line_error(capsys.readouterr().err)


# ----------------------------------------------------------------------------- bad files, one line each

def test_predict_goes_on_past_long_unreadable_and_folder_paths(tmp_path, tiny_checkpoint, monkeypatch, capsys):
    from tests.sample_files import astronaut_rgb, jpeg_bytes
    good = tmp_path / "astronaut.jpg"
    good.write_bytes(jpeg_bytes(astronaut_rgb()))
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(good.read_bytes())
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))
    files = [str(tmp_path / ("n" * 300 + ".jpg")), "/x" * 2500, str(locked), str(tmp_path), str(good)]
    code = cli(["predict", "--checkpoint", str(tiny_checkpoint), "--no-detect", "--json", *files])
    entries = json.loads(capsys.readouterr().out)
    assert code == 1 and [("error" in e) for e in entries] == [True, True, True, True, False]
    assert "too long" in entries[0]["error"] and "too long" in entries[1]["error"]
    assert "permission denied" in entries[2]["error"] and "is a folder" in entries[3]["error"]
    assert all(e["error"].count("\n") == 0 for e in entries[:4])


@pytest.mark.parametrize("argv", [
    ["evaluate", "--checkpoint", "/y" * 2500],
    ["evaluate", "--checkpoint", "n" * 300 + ".pt"],
    ["train", "--data", "/z" * 2500, "--epochs", "1"],
    ["data", "report", "--data", "/z" * 2500],
])
def test_long_paths_are_one_line(argv, tmp_path, capsys):
    code = cli([*argv, *(["--out", str(tmp_path)] if argv[0] == "train" else [])])
    err = capsys.readouterr().err
    assert code in (1, 2) and ends_in_one_error_line(err) and len(err) < 600


def test_a_non_utf8_csv_and_a_binary_exclude_file_are_one_line(tmp_path, make_kaggle_zip, capsys):
    csv = tmp_path / "fer2013.csv"
    csv.write_bytes(b"emotion,pixels,Usage\n0,\xff\xfe 1 2,Training\n")
    assert cli(["data", "report", "--data", str(csv)]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and "UTF-8" in err
    exclude = tmp_path / "exclude.txt"
    exclude.write_bytes(bytes(range(256)))
    assert cli(["train", "--data", str(make_kaggle_zip()), "--out", str(tmp_path / "runs"), "--epochs", "1",
                "--exclude", str(exclude)]) == 1
    err = capsys.readouterr().err
    assert ends_in_one_error_line(err) and "UTF-8" in err


def test_a_folder_given_as_a_checkpoint_says_so(tmp_path, capsys):
    assert cli(["evaluate", "--checkpoint", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- damage is shown, not hidden

def test_a_truncated_metrics_file_and_a_lost_config_show_as_damage(project):
    runs = project / "runs"
    truncated = _ended_run(runs, "truncated")
    (truncated / "metrics.jsonl").write_text('{"epoch": 1, "train_loss"')
    lost = _ended_run(runs, "lost-config")
    (lost / "best.pt").write_bytes(b"weights")
    (lost / "config.json").unlink()
    runs_by_id = {r.id: r for r in Registry(runs).list()}
    assert "metrics.jsonl line 1" in runs_by_id["truncated"].error
    assert "config.json is missing" in runs_by_id["lost-config"].error


def test_crafted_rows_are_listed_as_damaged(project):
    registry = Registry(project / "runs")
    _plant(registry, "../escape", 1, state="finished")
    (run,) = registry.list()
    assert run.state == "damaged" and "only be deleted" in run.error


def test_paths_module_has_the_only_name_validator():
    """One gate: no other module defines its own name pattern or name check."""
    for module in (REPO / "fer_core").rglob("*.py"):
        if module.name == "paths.py":
            continue
        text = module.read_text()
        assert "def check_run_name" not in text and "_RUN_NAME" not in text, module
    assert paths.check_name("fer_vgg.e80") == "fer_vgg.e80"
    with pytest.raises(FERError):
        paths.path_inside("/tmp", "../etc")


def test_compare_lists_crafted_cards_as_notes_not_exceptions(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from fer_core.cards.catalog import card_entries
    models = tmp_path / "models"
    models.mkdir()
    _ensemble_card(models, "not a list")
    shipped = json.loads((REPO / "models" / "default.json").read_text())
    shipped.update(name="escaping", checkpoint="../../etc/passwd", predictions="../../etc/passwd")
    (models / "escaping.json").write_text(json.dumps(shipped))
    notes = {e.name: e.note for e in card_entries(models)}
    assert "malformed" in notes["crafted"] and "outside" in notes["escaping"]
    monkeypatch.setenv("FER_MODELS_DIR", str(models))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA", str(tmp_path / "nowhere.zip"))
    at = AppTest.from_file(str(REPO / "pages" / "compare.py"), default_timeout=120).run()
    assert not at.exception


def test_the_lock_holder_is_found_where_the_lock_table_names_another_device(tmp_path, monkeypatch):
    """btrfs subvolumes and some overlays: /proc/locks and stat disagree on the device, not on the inode."""
    from fer_core.rundir import folder
    lock = folder.TrainerLock(tmp_path).acquire()
    try:
        assert folder.lock_holder(tmp_path) == os.getpid()
        monkeypatch.setattr(folder.os, "major", lambda dev: 0xEE)  # stat's device no longer matches the table's
        assert folder.lock_holder(tmp_path) == os.getpid()
        (tmp_path / folder.LOCK_FILE).write_text("1")  # a lock file naming another process: not trusted
        assert folder.lock_holder(tmp_path) is None
    finally:
        lock.release()
    assert folder.lock_holder(tmp_path) is None


def test_a_killed_publish_leaves_a_hidden_folder_that_the_next_publish_removes(tmp_path):
    stale = tmp_path / ".staging-killed"
    stale.mkdir()
    (stale / "m.pt").write_text("half a model")
    old = time.time() - 7 * 3600
    os.utime(stale, (old, old))
    fresh = tmp_path / ".staging-running"  # another process publishing right now
    fresh.mkdir()
    with publish(tmp_path, ["card.json"]) as stage:
        (stage / "card.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".staging-running", "card.json"]


# ----------------------------------------------------------------------------- nothing replaced or broken by accident

def test_ship_needs_a_name_and_never_replaces_a_model_unasked(project, compare_world, capsys):
    models = project / "models"
    (models / "default.pt").write_bytes(b"the old default")
    (models / "default.json").write_text('{"the": "old card"}')
    run, data = compare_world["runs"] / "small-a", compare_world["data"]
    with pytest.raises(SystemExit) as usage:
        cli(["ship", str(run), "--data", str(data)])
    assert usage.value.code == 2 and "--name" in capsys.readouterr().err
    started = time.perf_counter()
    assert cli(["ship", str(run), "--name", "default", "--data", str(data)]) == 1
    err = capsys.readouterr().err
    assert one_line_error(err) and "already exists" in err and "--replace" in err
    assert time.perf_counter() - started < 5  # refused before measuring anything
    assert tree(models) == {"default.pt", "default.json"}
    assert cli(["ship", str(run), "--name", "default", "--replace", "--data", str(data)]) == 0
    assert "measuring models/default" in capsys.readouterr().err  # a progress bar while it measures, not silence
    assert json.loads((models / "default.json").read_text())["name"] == "default"
    (kept,) = (models / ".replaced").iterdir()
    assert (kept / "default.pt").read_bytes() == b"the old default"
    assert (kept / "default.json").read_text() == '{"the": "old card"}'


def test_cancel_of_a_finished_run_signals_no_one_holding_its_lock_file(project):
    runs = project / "runs"
    folder = _ended_run(runs, "done")
    holder = subprocess.Popen(["flock", str(folder / "trainer.lock"), "sleep", "600"], start_new_session=True)
    try:
        time.sleep(0.5)
        registry = Registry(runs)
        registry.list()  # the folder becomes a row
        with pytest.raises(FERError, match="finished: nothing to cancel"):
            registry.cancel("done")
        (folder / "status.json").write_text(json.dumps({"state": "running"}))  # even a run that says it runs
        registry.index.update("done", state="running")
        with pytest.raises(FERError, match="not a fer_core trainer"):
            registry.cancel("done")
        time.sleep(0.3)
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()


def _bad_cards(models: Path) -> None:
    (models / "latin1.json").write_bytes('{"name": "caf\xe9"}'.encode("latin-1"))
    (models / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (models / "list.json").write_text("[1, 2]")
    (models / "bigint.json").write_text('{"format": "fer_core.model_card/1", "n": ' + "9" * 5000 + "}")


def test_one_bad_card_hides_itself_not_the_others(project, compare_world, capsys):
    import shutil

    from fer_core.cards.catalog import card_entries
    from fer_core.cards.model_cards import load_cards
    models = project / "models"
    for path in compare_world["models"].iterdir():
        (shutil.copytree if path.is_dir() else shutil.copy)(path, models / path.name)
    _bad_cards(models)
    assert sorted(c["name"] for c in load_cards(models)) == ["reference-elu", "reference-small"]
    assert {"reference-elu", "reference-small"} <= {e.name for e in card_entries(models)}
    assert cli(["results-table"]) == 0 and "reference-small" in capsys.readouterr().out
    assert cli(["calibrate"]) == 0 and "reference-small" in capsys.readouterr().out
    for card in ("deep.json", "latin1.json", "list.json", "bigint.json"):
        assert cli(["predict", str(REPO / "tests"), "--checkpoint", str(models / card)]) == 1
        err = capsys.readouterr().err
        assert "Traceback" not in err and "RecursionError" not in err and err.count("\n") <= 2, err


def test_a_card_cannot_write_into_the_readme_outside_its_row(project, compare_world, tmp_path):
    from fer_core.cards.model_cards import load_cards
    from fer_core.cards.results_table import ZOO_END, ZOO_START, update_tables
    models = project / "models"
    card = json.loads((compare_world["models"] / "reference-small.json").read_text())
    card["name"] = f"x {ZOO_END}\n# Injected heading"
    card["kind"] = "shipped"
    (models / "evil.json").write_text(json.dumps(card))
    assert [c["name"] for c in load_cards(models)] == ["evil"]
    docs = tmp_path / "docs"
    docs.mkdir()
    (tmp_path / "README.md").write_text(f"# Readme\n{ZOO_START}\n{ZOO_END}\nafter\n")
    for name in ("results.md", "training.md"):
        (docs / name).write_text("<!-- results-table:start -->\n<!-- results-table:end -->\n"
                                 "<!-- calibration-table:start -->\n<!-- calibration-table:end -->\n"
                                 "<!-- recipes:start -->\n<!-- recipes:end -->\n"
                                 "<!-- train-options:start -->\n<!-- train-options:end -->\n")
    card["notes"] = f"a note {ZOO_END} with a marker"
    (models / "evil.json").write_text(json.dumps(card))
    update_tables(tmp_path, models)
    readme = (tmp_path / "README.md").read_text()
    assert readme.count(ZOO_END) == 1 and "# Injected" not in readme and readme.endswith(f"{ZOO_END}\nafter\n")
    assert all((docs / n).read_text().count("<!-- recipes:end -->") <= 1 for n in ("results.md", "training.md"))


def test_an_ensemble_card_has_a_bounded_number_of_distinct_members(tmp_path, tiny_checkpoint):
    import shutil

    from fer_core.models.ensemble import MAX_MEMBERS, member_paths
    shutil.copy(tiny_checkpoint, tmp_path / "m.pt")
    card = tmp_path / "big.json"
    card.write_text(json.dumps({"arch": "ensemble", "members": [{"checkpoint": "m.pt"}] * 150}))
    with pytest.raises(CheckpointError, match=f"at most {MAX_MEMBERS}"):
        member_paths(card)
    card.write_text(json.dumps({"arch": "ensemble", "members": [{"checkpoint": "m.pt"}, {"checkpoint": "./m.pt"}]}))
    with pytest.raises(CheckpointError, match="same member file twice"):
        member_paths(card)


def test_bench_zoo_skips_a_card_whose_checkpoint_lies_outside_and_goes_on(project, compare_world, tmp_path, capsys):
    import shutil
    models = project / "models"
    for path in compare_world["models"].iterdir():
        if path.is_file():
            shutil.copy(path, models / path.name)
    outside = tmp_path / "elsewhere.pt"
    shutil.copy(models / "reference-small.pt", outside)
    card = json.loads((models / "reference-small.json").read_text())
    (models / "evil.json").write_text(json.dumps({**card, "name": "evil", "checkpoint": str(outside)}))
    (models / "broken.json").write_text(json.dumps({**card, "name": "broken", "checkpoint": "broken.pt"}))
    (models / "broken.pt").write_bytes(b"not a checkpoint")
    assert cli(["bench", "zoo"]) == 1
    out = capsys.readouterr().out
    assert "evil" in out and "points outside" in out and "broken" in out and "skipped" in out
    assert "reference-small" in out and " ms (" in out  # the good card was measured all the same


def test_outputs_are_checked_before_the_work_and_no_folder_is_made_for_them(project, tmp_path, capsys, monkeypatch):
    import fer_core.data.audit as audit_module
    monkeypatch.setattr(audit_module, "audit_dataset", lambda *a, **k: pytest.fail("audited before the check"))
    for argv in (["export", "model.pt", "--int8", "--onnx", str(tmp_path / "no" / "such" / "m.onnx")],
                 ["export", "model.pt", "--int8", "--onnx", str(tmp_path)],
                 ["data", "audit", "--out", str(tmp_path / "no" / "such" / "exclude.txt")]):
        assert cli(argv) == 1
        err = capsys.readouterr().err
        assert one_line_error(err) and ("does not exist" in err or "is a folder" in err or "should end" in err), err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("argv", [["train", "--out", ""], ["tune", "--storage", "", "--space", "lr=0.01:0.1",
                                                               "--trials", "1"],
                                  ["data", "audit", "--out", ""], ["evaluate", "--data", ""]])
def test_an_empty_value_is_refused_not_taken_for_the_default(argv, project, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert one_line_error(err) and "empty value" in err


def test_a_bad_name_exits_2_from_every_command(project, compare_world, capsys):
    run, data = str(compare_world["runs"] / "small-a"), str(compare_world["data"])
    for argv in (["ship", run, "--name", "../x", "--data", data], ["train", "--name", "../x", "--data", data],
                 ["tune", "--study", "../x", "--space", "lr=0.01:0.1", "--trials", "1", "--data", data]):
        assert cli(argv) == 2, argv
        capsys.readouterr()


def test_an_ensemble_whose_members_folder_links_outside_is_refused_before_evaluating(project, compare_world, capsys,
                                                                                    monkeypatch, tmp_path):
    import fer_core.cards.ensembles as ensembles
    monkeypatch.setattr(ensembles, "ensemble_metrics", lambda *a, **k: pytest.fail("evaluated before the check"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "models" / "duo.members").symlink_to(outside, target_is_directory=True)
    runs = compare_world["runs"]
    code = cli(["ensemble", str(runs / "small-a" / "best.pt"), str(runs / "elu-b" / "best.pt"), "--name", "duo",
                "--data", str(compare_world["data"])])
    err = capsys.readouterr().err
    assert code == 1 and one_line_error(err) and "outside" in err and list(outside.iterdir()) == []


def test_calibrate_skips_a_foreign_predictions_file_in_one_line(project, compare_world, capsys):
    import shutil
    models = project / "models"
    for path in compare_world["models"].iterdir():
        if path.is_file():
            shutil.copy(path, models / path.name)
    np_file = models / "reference-small.predictions.npz"
    np_file.write_bytes(b"not an npz")
    assert cli(["calibrate"]) == 0
    captured = capsys.readouterr()
    assert "reference-small" in captured.err and "not a complete predictions file" in captured.err
    assert "Traceback" not in captured.err and "reference-elu" in captured.out

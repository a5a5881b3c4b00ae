"""The run registry and job launcher, through the same API the Train page uses."""
import json
import os
import signal
import time

import pytest

from fer_core.runs.registry import Registry
from fer_core.training.config import TrainConfig

TINY = dict(arch="fer_vgg_small", batch_size=16, tta_views=2, rotate=5)


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "runs")


@pytest.fixture
def tiny_zip(make_kaggle_zip):
    return str(make_kaggle_zip(per_class=(6, 3, 3)))


def wait_for(registry, run_id, predicate, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = next(r for r in registry.list() if r.id == run_id)
        if predicate(run):
            return run
        time.sleep(0.5)
    raise AssertionError(f"timed out; last state {run.state}, log: {_log(run)}")


def _log(run):
    path = os.path.join(run.run_dir, "train.log")
    return open(path).read()[-1500:] if os.path.exists(path) else "(no log)"


@pytest.mark.slow
def test_a_submitted_job_runs_to_completion_in_its_own_process(registry, tiny_zip):
    run_id = registry.submit(TrainConfig(data=tiny_zip, epochs=2, **TINY))
    assert registry.get(run_id).state in ("queued", "running")
    run = wait_for(registry, run_id, lambda r: r.state not in ("queued", "running"))
    assert run.state == "finished", _log(run)
    assert run.pid != os.getpid() and run.epochs_done == 2
    assert run.test_accuracy is not None and run.test_accuracy_tta is not None
    folder = registry.runs_dir / run_id
    assert [json.loads(s)["epoch"] for s in (folder / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    assert (folder / "best.pt").exists() and (folder / "eval.json").exists()


@pytest.mark.slow
def test_sigkill_is_reported_as_interrupted_and_resume_counts_epochs_once(registry, tiny_zip):
    # 40 short epochs: the run cannot end between two polls once it has done 2
    run_id = registry.submit(TrainConfig(data=tiny_zip, epochs=40, **TINY))
    run = wait_for(registry, run_id, lambda r: r.state == "running" and r.epochs_done >= 2)
    os.killpg(run.pid, signal.SIGKILL)
    run = wait_for(registry, run_id, lambda r: r.state != "running")
    assert run.state == "interrupted"
    assert "signal 9" in run.error or "ended without finishing" in run.error
    done = run.epochs_done
    assert done >= 2

    registry.resume(run_id)
    run = wait_for(registry, run_id, lambda r: r.state not in ("queued", "running"), timeout=300)
    assert run.state == "finished", _log(run)
    epochs = [json.loads(s)["epoch"] for s in (registry.runs_dir / run_id / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))


@pytest.mark.slow
def test_cancel_keeps_the_checkpoint_and_resume_finishes(registry, tiny_zip):
    run_id = registry.submit(TrainConfig(data=tiny_zip, epochs=40, **TINY))
    wait_for(registry, run_id, lambda r: r.state == "running" and r.epochs_done >= 1)
    registry.cancel(run_id)
    run = wait_for(registry, run_id, lambda r: r.state != "running")
    assert run.state == "cancelled"
    assert (registry.runs_dir / run_id / "last.pt").exists()
    stopped_at = run.epochs_done
    assert stopped_at < 40

    registry.resume(run_id)
    run = wait_for(registry, run_id, lambda r: r.state not in ("queued", "running"), timeout=300)
    assert run.state == "finished", _log(run)
    epochs = [json.loads(s)["epoch"] for s in (registry.runs_dir / run_id / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 41))  # the cancelled run went on from its checkpoint, each epoch once


def test_a_crashing_job_is_failed_with_its_error_and_the_registry_survives(registry, tmp_path):
    run_id = registry.submit(TrainConfig(data=str(tmp_path / "missing.zip"), epochs=1, **TINY))
    run = wait_for(registry, run_id, lambda r: r.state not in ("queued", "running"))
    assert run.state == "failed" and "dataset not found" in run.error


def test_queued_jobs_cancel_and_delete(registry, tiny_zip):
    run_id = registry.submit(TrainConfig(data=tiny_zip, epochs=1, **TINY), start_worker=False)
    registry.cancel(run_id)
    assert registry.get(run_id).state == "cancelled"
    registry.delete(run_id)
    assert all(r.id != run_id for r in registry.list())


def test_sweep_queues_one_job_per_combination_and_refuses_bad_values(registry, tiny_zip):
    base = TrainConfig(data=tiny_zip, epochs=1, **TINY)
    ids = registry.submit_sweep(base, {"lr": [0.01, 0.05], "balance": ["none", "weighted"]}, name="lr-x-balance",
                                start_worker=False)
    runs = [registry.get(i) for i in ids]
    assert len(runs) == 4 and {r.sweep for r in runs} == {"lr-x-balance"}
    combos = {(json.loads(r.config)["lr"], json.loads(r.config)["balance"]) for r in runs}
    assert combos == {(0.01, "none"), (0.01, "weighted"), (0.05, "none"), (0.05, "weighted")}
    with pytest.raises(ValueError):
        registry.submit_sweep(base, {"epochs": [1, 0]}, start_worker=False)
    assert len(registry.list()) == 4


def test_invalid_options_never_reach_the_queue(registry, tiny_zip):
    with pytest.raises(ValueError, match="optimizer"):
        registry.submit(TrainConfig(data=tiny_zip, optimizer="rmsprop"), start_worker=False)
    assert registry.list() == []


def test_runs_list_cli_shows_the_same_registry(registry, tiny_zip, capsys):
    from fer_core.cli import main
    registry.submit(TrainConfig(data=tiny_zip, epochs=1, name="listed", **TINY), start_worker=False)
    assert main(["runs", "list", "--json", "--runs-dir", str(registry.runs_dir)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["id"] == "listed" and row["state"] == "queued" and row["arch"] == "fer_vgg_small"
    assert {"epochs_done", "best_val_accuracy", "test_accuracy"} <= set(row)


# ----------------------------------------------------------------------------- polling is cheap

def _ended_run(runs, name, state="finished"):
    folder = runs / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"arch": "fer_vgg_small", "epochs": 1, "name": name}))
    (folder / "status.json").write_text(json.dumps({"state": state, "pid": None, "started": "2026-01-01T00:00:00",
                                                    "updated": "2026-01-01T00:01:00"}))
    return folder


def test_polling_reads_an_ended_run_once_until_its_folder_changes(tmp_path, monkeypatch):
    import fer_core.runs.registry as runs_module
    runs = tmp_path / "runs"
    folder = _ended_run(runs, "done")
    calls = []
    real = runs_module.reconcile
    monkeypatch.setattr(runs_module, "reconcile", lambda *a, **k: calls.append(a[0].name) or real(*a, **k))
    registry = Registry(runs)
    assert [(r.id, r.state) for r in registry.list()] == [("done", "finished")]
    writes = []
    real_update = registry.index.update
    monkeypatch.setattr(registry.index, "update", lambda run_id, **v: (writes.append(v) if v else None,
                                                                      real_update(run_id, **v)))
    for _ in range(3):  # the Train page's poll: nothing re-read, nothing written
        assert [(r.id, r.state) for r in registry.list()] == [("done", "finished")]
    assert calls == ["done"] and writes == []
    # a CLI --resume that failed later rewrites status.json: the next poll sees it
    (folder / "status.json").write_text(json.dumps({"state": "failed", "error": "boom", "started": "2026-01-02T00:00:00",
                                                    "updated": "2026-01-02T00:05:00"}))
    (run,) = registry.list()
    assert (run.state, run.error, calls) == ("failed", "boom", ["done", "done"])


def test_a_registry_file_from_before_the_folder_stamp_is_upgraded(tmp_path):
    import sqlite3
    runs = tmp_path / "runs"
    _ended_run(runs, "old")
    db = sqlite3.connect(runs / "registry.sqlite")
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, arch TEXT NOT NULL, state TEXT NOT NULL, slot TEXT NOT NULL, "
               "sweep TEXT, gpus INTEGER NOT NULL DEFAULT 1, resume INTEGER NOT NULL DEFAULT 0, pid INTEGER, "
               "created TEXT NOT NULL, started TEXT, ended TEXT, epochs INTEGER, "
               "epochs_done INTEGER NOT NULL DEFAULT 0, best_val_accuracy REAL, test_accuracy REAL, "
               "test_accuracy_tta REAL, error TEXT, config TEXT NOT NULL)")
    db.execute("INSERT INTO runs (id, arch, state, slot, created, config) VALUES "
               "('old', 'fer_vgg_small', 'finished', 'cpu', '2026-01-01', '{}')")
    db.commit()
    db.close()
    (run,) = Registry(runs).list()
    assert (run.id, run.state) == ("old", "finished") and run.folder_stamp
    (again,) = Registry(runs).list()  # a second opening finds the column and adds nothing
    assert again == run
    with sqlite3.connect(runs / "registry.sqlite") as db:
        assert "folder_stamp" in {r[1] for r in db.execute("PRAGMA table_info(runs)")}


def test_a_settled_run_taken_up_by_a_cli_trainer_shows_running(tmp_path):
    from fer_core.rundir.folder import TrainerLock
    runs = tmp_path / "runs"
    folder = _ended_run(runs, "again", state="cancelled")
    registry = Registry(runs)
    assert registry.list()[0].state == "cancelled"
    with TrainerLock(folder):  # `train --resume` holds the lock before it writes anything
        assert registry.list()[0].state == "running"


def test_damage_is_still_named_after_a_resume_is_cancelled(tmp_path, monkeypatch):
    from fer_core.runs.reconcile import DAMAGED
    monkeypatch.setattr("fer_core.runs.launcher.ensure_worker", lambda *a: None)
    runs = tmp_path / "runs"
    folder = _ended_run(runs, "hurt", state="cancelled")
    (folder / "metrics.jsonl").write_text('{"epoch": 1}\n')
    registry = Registry(runs)
    assert registry.list()[0].error.startswith(DAMAGED)
    registry.resume("hurt")
    assert registry.get("hurt").state == "queued"
    registry.cancel("hurt")  # its files did not change, yet the row is read again
    (run,) = registry.list()
    assert run.state == "cancelled" and run.error.startswith(DAMAGED)


def test_a_job_still_starting_is_not_called_damaged(tmp_path, monkeypatch, tiny_zip):
    monkeypatch.setattr("fer_core.runs.launcher.ensure_worker", lambda *a: None)  # nothing picks the job up
    registry = Registry(tmp_path / "runs")
    run_id = registry.submit(TrainConfig(data=str(tiny_zip), epochs=1, name="starting"))
    (tmp_path / "runs" / "starting").mkdir(exist_ok=True)  # the folder exists before its trainer writes config.json
    import subprocess
    import sys
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "fer_core"])  # still loading
    try:
        registry.index.update(run_id, state="running", started="2026-01-01T00:00:00", pid=launcher.pid)
        (run,) = registry.list()
        assert run.state == "running" and not (run.error or "")
    finally:
        launcher.kill()
        launcher.wait()

"""`python -m fer_core tune`: the search space, trials as run folders, pruning, continuing a study, a dead
worker's trial, trials queued through the registry, and two workers sharing a PostgreSQL study."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_core.cli import main
from fer_core.rundir.folder import RunFolder
from fer_core.tuning.space import SpaceError, parse_space
from tests.conftest import REPO


def tune(data, runs, *args) -> int:
    return main(["tune", "--epochs", "2", "--batch-size", "16", "--tta-views", "2", "--device", "cpu",
                 "--data", str(data), "--out", str(runs), *map(str, args)])


def load(runs, name="s"):
    import optuna
    return optuna.load_study(study_name=name, storage=f"sqlite:///{Path(runs).resolve() / 'optuna.db'}")


def test_the_search_space_is_checked_against_the_training_options():
    dims = parse_space(["lr=0.005:0.2:log", "weight_decay=0:0.001", "label_smoothing=0,0.1,0.2", "# a comment", "",
                        "optimizer=sgd,adamw", "epochs=5:20"])
    assert [str(d) for d in dims] == ["lr=0.005:0.2:log", "weight_decay=0:0.001", "label_smoothing=0.0,0.1,0.2",
                                      "optimizer=sgd,adamw", "epochs=5:20"]
    assert type(dims[-1].distribution()).__name__ == "IntDistribution" and dims[0].distribution().log
    for bad, words in [("data=a,b", "cannot be tuned"), ("lr=0.2:0.005", "below its high end"),
                       ("lr=0:0.1:log", "log range must start above 0"), ("label_smoothing=0:1", "must be in"),
                       ("optimizer=sgd,lion", "must be one of"), ("lr=0.1", "at least two choices"),
                       ("lr", "expected NAME="), ("lr=a:b", "is not a number")]:
        with pytest.raises(SpaceError, match=words):
            parse_space([bad])
    with pytest.raises(SpaceError, match="given twice"):
        parse_space(["lr=0.01,0.1", "lr=0.01:0.1"])
    with pytest.raises(SpaceError, match="empty"):
        parse_space(["# nothing"])


def test_usage_errors_exit_2_before_anything_runs(tmp_path, make_kaggle_zip, capsys):
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    assert tune(data, runs, "--space", "lr=0.01:0.1", "--study", "s") == 2  # neither --trials nor --timeout
    assert tune(data, runs, "--space", "lr=0.01:0.1", "--sampler", "grid", "--trials", "2", "--study", "s") == 2
    assert tune(data, runs, "--space", "seed=1,2", "--name", "x", "--trials", "1", "--study", "s") == 2
    assert tune(data, runs, "--space", "lr=0.01,0.1", "--trials", "1", "--study", "../out") != 0
    assert "grid sampler needs lists" in capsys.readouterr().err
    assert not runs.exists() or not any(p.is_dir() for p in runs.iterdir())


def test_trials_are_run_folders_and_a_study_is_continued(tmp_path, make_kaggle_zip, capsys):
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    assert tune(data, runs, "--space", "lr=0.001:0.1:log", "label_smoothing=0,0.1", "--trials", "2", "--study", "s",
                "--pruner", "none", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["states"] == {"complete": 2} and summary["epochs_trained"] == summary["epochs_if_all_ran"] == 4
    study = load(runs)
    for trial in study.trials:
        run = RunFolder(trial.user_attrs["run"])
        assert run.path.name == f"s-{trial.number:03d}" and run.status()[0]["state"] == "finished"
        config, _ = run.config()
        assert config["lr"] == trial.params["lr"] and config["label_smoothing"] == trial.params["label_smoothing"]
        assert trial.value == max(m["val_accuracy"] for m in run.metrics()[0])  # PublicTest, never PrivateTest
        assert sorted(trial.intermediate_values) == [1, 2]
    # a second tune with the same study continues it, up to --trials in all
    assert tune(data, runs, "--space", "lr=0.001:0.1:log", "label_smoothing=0,0.1", "--trials", "3", "--study", "s",
                "--pruner", "none") == 0
    assert len(load(runs).trials) == 3
    assert tune(data, runs, "--space", "lr=0.001:0.1", "--trials", "4", "--study", "s", "--pruner", "none") == 2
    assert "was created with the space" in capsys.readouterr().err
    # the trials are runs the registry shows, grouped under the study's name
    from fer_core.runs.registry import Registry
    assert {r.id: r.sweep for r in Registry(runs).list()} == {f"s-00{i}": "s" for i in range(3)}


def test_a_pruned_trial_stops_after_its_epoch_and_says_so(tmp_path, make_kaggle_zip, monkeypatch, capsys):
    import optuna

    import fer_core.tuning.trial as trial_module
    import fer_core.tuning.study as study_module
    always = lambda name, epochs: optuna.pruners.ThresholdPruner(lower=2.0)  # noqa: E731 - no accuracy reaches 2
    monkeypatch.setattr(trial_module, "make_pruner", always)
    monkeypatch.setattr(study_module, "make_pruner", always)
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    assert tune(data, runs, "--space", "lr=0.001:0.1:log", "--trials", "2", "--study", "s", "--epochs", "3",
                "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["states"] == {"pruned": 2} and summary["epochs_trained"] == 2 and summary["epochs_if_all_ran"] == 6
    for trial in load(runs).trials:
        run = RunFolder(trial.user_attrs["run"])
        assert run.status()[0]["state"] == "pruned" and len(run.metrics()[0]) == 1
        assert not run.has(RunFolder.EVAL)  # no final evaluation: its CPU is saved too
    from fer_core.runs.registry import Registry
    assert {r.state for r in Registry(runs).list()} == {"pruned"}


def test_a_trial_whose_worker_died_is_failed_in_the_study_and_in_its_run(tmp_path, monkeypatch):
    import optuna

    import fer_core.tuning.trial as trial_module
    from fer_core.tuning.space import parse_space
    from fer_core.tuning.study import default_storage, open_study
    monkeypatch.setattr(trial_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(trial_module, "GRACE_S", 2)
    runs = tmp_path / "runs"
    dims = parse_space(["lr=0.01:0.1"])
    storage = default_storage(runs)
    study = open_study("s", storage, "tpe", "median", dims, 5)
    trial = study.ask({d.name: d.distribution() for d in dims})
    folder = RunFolder.create(runs, "s-000", "fer_vgg_small")  # what its trainer had written when it died
    folder.write_config({"arch": "fer_vgg_small", "trial": f"s#{trial.number}@{storage}"})
    folder.update_status(state="running")
    trial.set_user_attr("run", str(folder.path))
    study._storage.record_heartbeat(trial._trial_id)
    time.sleep(3)  # no heartbeat for longer than the grace period
    open_study("s", storage, "tpe", "median", dims, 5)  # any later tune of the study
    assert load(runs).trials[0].state == optuna.trial.TrialState.FAIL
    status = folder.status()[0]
    assert status["state"] == "failed" and "tune worker stopped" in status["error"]


def test_a_trial_whose_run_name_is_taken_fails_and_no_old_result_is_recorded(tmp_path, make_kaggle_zip, capsys):
    import optuna
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    assert tune(data, runs, "--space", "lr=0.01:0.1", "--trials", "2", "--study", "qk", "--pruner", "none",
                "--epochs", "1") == 0
    before = {p.name: (p / "config.json").read_text() for p in runs.iterdir() if p.is_dir()}
    other = f"sqlite:///{tmp_path / 'other.db'}"  # a second storage: its trial 0 would be named qk-000 too
    code = tune(data, runs, "--space", "lr=0.01:0.1", "--trials", "2", "--study", "qk", "--storage", other,
                "--pruner", "none", "--epochs", "1")
    err = capsys.readouterr().err
    assert code == 1 and "qk-000 already exists" in err and "another --study name" in err
    (trial,) = optuna.load_study(study_name="qk", storage=other).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.value is None  # never the old run's accuracy
    assert {p.name: (p / "config.json").read_text() for p in runs.iterdir() if p.is_dir()} == before


def test_tell_counts_only_the_trials_own_run_folder(tmp_path):
    import optuna

    from fer_core.tuning.space import parse_space
    from fer_core.tuning.study import _tell, default_storage, open_study
    runs = tmp_path / "runs"
    dims = parse_space(["lr=0.01:0.1"])
    storage = default_storage(runs)
    study = open_study("s", storage, "tpe", "none", dims, 2)
    trial = study.ask({d.name: d.distribution() for d in dims})
    folder = RunFolder.create(runs, "s-000", "fer_vgg_small")  # finished, but another study's trial 0
    folder.write_config({"arch": "fer_vgg_small", "trial": "s#0@sqlite:///elsewhere.db"})
    folder.update_status(state="finished")
    (folder.path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "val_accuracy": 0.9}) + "\n")
    state, value, error = _tell(study, trial, folder.path, f"s#0@{storage}")
    assert (state, value) == ("failed", None) and "another storage" in error
    assert load(runs).trials[0].state == optuna.trial.TrialState.FAIL


def test_a_study_whose_trials_all_fail_stops_instead_of_looping(tmp_path, make_kaggle_zip, capsys):
    import optuna
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    code = tune(data, runs, "--space", "arch=seed_cnn,elu_cnn", "--arch", "resnet18", "--pretrained", weights, "--trials", "2",
                "--study", "loop", "--pruner", "none")
    err = capsys.readouterr().err
    assert code == 1 and "3 trials in a row failed" in err and "trains from scratch" in err
    assert len(load(runs, "loop").trials) == 3
    assert all(t.state == optuna.trial.TrialState.FAIL for t in load(runs, "loop").trials)
    code = tune(data, runs, "--space", "lr=0.01:0.1", "--trials", "2", "--study", "s" * 98, "--pruner", "none")
    assert code != 0 and "at most 96" in capsys.readouterr().err


def test_a_seeded_sampler_draws_new_values_in_every_worker_and_rerun(tmp_path):
    from fer_core.tuning.space import parse_space
    from fer_core.tuning.study import default_storage, open_study
    dims = parse_space(["lr=0.001:0.1:log"])
    storage = default_storage(tmp_path)
    drawn = []
    for _worker in range(3):  # three processes of one study, each started with --sampler-seed 1
        study = open_study("seeded", storage, "random", "none", dims, 2, seed=1)
        trial = study.ask({d.name: d.distribution() for d in dims})
        drawn.append(trial.params["lr"])
        study.tell(trial, 0.5)
    assert len(set(drawn)) == 3
    again = open_study("again", default_storage(tmp_path / "b"), "random", "none", dims, 2, seed=1)
    assert again.ask({d.name: d.distribution() for d in dims}).params["lr"] == drawn[0]  # reproducible by number


def test_a_crafted_run_attribute_cannot_make_tune_touch_another_folder(tmp_path, monkeypatch):
    import fer_core.tuning.trial as trial_module
    from fer_core.tuning.space import parse_space
    from fer_core.tuning.study import default_storage, open_study
    monkeypatch.setattr(trial_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(trial_module, "GRACE_S", 2)
    runs = tmp_path / "runs"
    victim = RunFolder.create(tmp_path / "elsewhere", "finished-run", "fer_vgg_small")
    victim.write_config({"arch": "fer_vgg_small"})
    victim.update_status(state="finished")
    dims = parse_space(["lr=0.01:0.1"])
    storage = default_storage(runs)
    study = open_study("s", storage, "tpe", "median", dims, 5)
    trial = study.ask({d.name: d.distribution() for d in dims})
    trial.set_user_attr("run", str(victim.path))  # what a crafted database says
    twin = RunFolder.create(runs, "s-000", "fer_vgg_small")  # this trial's name, finished: never marked failed
    twin.write_config({"arch": "fer_vgg_small", "trial": "s#0@sqlite:///another.db"})
    twin.update_status(state="finished")
    second = study.ask({d.name: d.distribution() for d in dims})
    second.set_user_attr("run", str(twin.path))
    study._storage.record_heartbeat(trial._trial_id)
    study._storage.record_heartbeat(second._trial_id)
    time.sleep(3)
    open_study("s", storage, "tpe", "median", dims, 5)  # marks the stale trials failed
    assert victim.status()[0]["state"] == "finished" and twin.status()[0]["state"] == "finished"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_queued_trials_run_as_jobs_of_the_registry(tmp_path, make_kaggle_zip, capsys):
    from fer_core.runs.registry import Registry
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    assert tune(data, runs, "--space", "seed=1,2", "--sampler", "grid", "--study", "q", "--queue", "--epochs", "1",
                "--pruner", "none", "--json") == 0
    assert json.loads(capsys.readouterr().out)["states"] == {"complete": 2}
    jobs = Registry(runs).list()
    assert sorted((r.id, r.state, r.sweep) for r in jobs) == [("q-000", "finished", "q"), ("q-001", "finished", "q")]
    assert {json.loads(r.config)["seed"] for r in jobs} == {1, 2}


# ----------------------------------------------------------------------------- PostgreSQL, two workers

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return candidates[-1].parent if candidates else None


@pytest.fixture
def postgres(tmp_path):
    """A throwaway PostgreSQL server (Debian's package) on a free port; skipped where it cannot start."""
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL's driver, a test dependency) is not installed")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = os.geteuid() == 0
    base = Path("/tmp") / f"pg-{os.getpid()}-{tmp_path.name[:20]}"  # a short path: the socket's name is limited
    base.mkdir()
    as_user = ["runuser", "-u", "postgres", "--"] if root else []
    if root:
        shutil.chown(base, "postgres")
    port = _free_port()
    data = base / "data"
    try:
        subprocess.run([*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth", "trust"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(base / "log"), "-o",
                        f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL could not start here: {exc}")
    try:
        subprocess.run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_workers_share_a_study_through_postgresql(postgres, tmp_path, make_kaggle_zip):
    import optuna
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    command = [sys.executable, "-m", "fer_core", "tune", "--space", "lr=0.001:0.1:log", "--trials", "6",
               "--study", "shared", "--storage", postgres, "--pruner", "median", "--epochs", "2", "--batch-size", "16",
               "--tta-views", "2", "--device", "cpu", "--data", str(data), "--out", str(runs)]
    # the study exists before the workers start, so they do not race to create it
    assert subprocess.run([*command[:3], "tune", "--space", "lr=0.001:0.1:log", "--trials", "0", "--study", "shared",
                           "--storage", postgres, "--pruner", "median", "--epochs", "2", "--out", str(runs)],
                          cwd=REPO, capture_output=True, timeout=300).returncode == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
               for _ in range(2)]
    logs = [w.communicate(timeout=800)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    trials = optuna.load_study(study_name="shared", storage=postgres).trials
    assert 6 <= len(trials) <= 7, logs  # two workers asking at once may both take the last trial (as in Optuna)
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials)
    by_worker = {t.user_attrs["worker"] for t in trials}
    assert len(by_worker) == 2, "each worker ran trials"
    runs_of = [t.user_attrs["run"] for t in trials]
    assert len(set(runs_of)) == len(trials) and all(Path(r).is_dir() for r in runs_of)  # none lost, none shared


def test_train_with_a_trial_that_cannot_be_used_is_one_line_and_makes_no_run_folder(tmp_path, make_kaggle_zip,
                                                                                    capsys):
    data, runs = make_kaggle_zip(), tmp_path / "runs"
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    existing = tmp_path / "empty.db"
    from fer_core.tuning.space import parse_space
    from fer_core.tuning.study import open_study
    open_study("real", f"sqlite:///{existing}", "random", "none", parse_space(["lr=0.01:0.1"]), 1)
    for ref, words in ((f"s#0@sqlite:///{junk}", "cannot use it"), (f"s#0@sqlite:///{tmp_path / 'none.db'}",
                                                                     "does not exist"),
                       (f"nosuch#0@sqlite:///{existing}", "no such study or trial")):
        code = main(["train", "--data", str(data), "--epochs", "1", "--trial", ref, "--out", str(runs)])
        err = capsys.readouterr().err
        assert code == 1 and words in err and "Traceback" not in err and err.count("\n") == 1, err
    assert not runs.exists() and not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("args,message", [(["--trials", "-1"], "trials must be in [0, inf]"),
                                          (["--timeout", "0"], "timeout must be in (0, inf]"),
                                          ([], "give --trials N or --timeout SECONDS")])
def test_tune_options_are_checked_from_their_declaration(args, message, capsys, tmp_path):
    """tune's own options are a StudyConfig, declared like TrainConfig's: bounds and the need for an end."""
    from fer_core.cli import main
    from fer_core.tuning.config import StudyConfig
    assert main(["tune", "--space", "lr=0.01:0.1", "--out", str(tmp_path), *args]) == 2
    assert message in capsys.readouterr().err and not any(tmp_path.iterdir())
    assert StudyConfig(trials=3).sampler == "tpe"

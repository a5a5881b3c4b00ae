"""The Train page under Streamlit's AppTest, against an isolated run registry."""
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fer_core.runs.registry import Registry

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "train.py")


@pytest.fixture
def isolated(tmp_path, monkeypatch, make_kaggle_zip):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA", str(make_kaggle_zip()))
    return tmp_path / "runs"


def open_page():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def fill_tiny_run(at, prefix="new_"):
    at.selectbox(key=f"{prefix}arch").set_value("fer_vgg_small")
    at.number_input(key=f"{prefix}epochs").set_value(1)
    at.number_input(key=f"{prefix}batch_size").set_value(16)
    at.number_input(key=f"{prefix}tta_views").set_value(2)


def test_empty_registry_says_how_to_start(isolated):
    at = open_page()
    assert any("No runs yet" in i.value for i in at.info)
    labels = {w.label for w in [*at.selectbox, *at.number_input, *at.checkbox, *at.slider, *at.text_input]}
    for option in ("Architecture", "Optimiser", "Scheduler", "Class balancing", "Epochs", "Batch size",
                   "Label smoothing", "Rotation (degrees)", "Zoom", "Random erasing probability", "Horizontal flip",
                   "Exclude images flagged by the data-health audit", "Device", "Seed"):
        assert option in labels, option


def test_the_form_estimates_the_chosen_budget_from_a_probe_on_this_machine(isolated, monkeypatch):
    import fer_core.training.probe as probe
    monkeypatch.setattr(probe, "train_images_per_s", lambda *a, **k: (100.0, 3, None))  # a probe, without the wait
    at = open_page()
    fill_tiny_run(at)
    at.number_input(key="new_epochs").set_value(30)
    next(b for b in at.button if b.label == "Estimate the time on this machine").click().run()
    assert not at.exception and not Registry(isolated).list(), "estimating starts nothing"
    (estimate,) = [i.value for i in at.info if "of training for 30 epochs" in i.value]
    assert "100 images/s here" in estimate and "About **0 min**" in estimate  # 42 tiny images x 30 / 100 per s


@pytest.mark.slow
def test_start_from_the_form_runs_a_job_that_the_page_then_shows_finished(isolated):
    at = open_page()
    fill_tiny_run(at)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception and any("Queued" in s.value for s in at.success), [e.value for e in at.error]
    (run,) = Registry(isolated).list()
    deadline = time.time() + 240
    while Registry(isolated).get(run.id).state in ("queued", "running") and time.time() < deadline:
        time.sleep(1)
    assert Registry(isolated).get(run.id).state == "finished"
    at = open_page()
    text = " ".join(m.value for m in at.markdown)
    assert run.id in text and "finished" in text
    assert any(m.label == "test accuracy (TTA)" and m.value.endswith("%") for m in at.metric)


def test_invalid_values_are_refused_in_the_form(isolated, tmp_path):
    at = open_page()
    at.text_input(key="new_data").set_value(str(tmp_path / "nowhere.zip"))
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("Not started" in e.value and "dataset not found" in e.value for e in at.error)
    assert Registry(isolated).list() == []


def test_a_consistent_teaching_job_is_queued_with_its_teacher_views(isolated, tmp_path, monkeypatch):
    monkeypatch.setattr("fer_core.runs.launcher.ensure_worker", lambda *a: None)  # queue only, start nothing
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"")  # the form checks that the file exists; the job would load it
    at = open_page()
    at.text_input(key="new_teacher").set_value(str(teacher))
    at.number_input(key="new_teacher_views").set_value(4)
    at.checkbox(key="new_teacher_mirror").check()
    at.number_input(key="new_crop").set_value(44)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("Not started" in e.value and "cannot be combined with --crop" in e.value for e in at.error)
    at.number_input(key="new_crop").set_value(None)
    next(b for b in at.button if b.label == "Start training").click().run()
    (run,) = Registry(isolated).list()
    config = run.to_dict()["config"]
    assert (config["teacher_views"], config["teacher_mirror"]) == (4, True)


def test_a_local_pretrained_file_must_be_named(isolated):
    at = open_page()
    at.selectbox(key="new_arch").set_value("resnet18")
    at.selectbox(key="new_pretrained").set_value("local file")
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("Not started" in e.value and "name the file" in e.value for e in at.error)
    assert Registry(isolated).list() == []  # not silently trained from scratch


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_study_queues_its_trials_one_at_a_time_and_they_finish(isolated):
    import optuna
    at = open_page()
    fill_tiny_run(at, "sweep_")

    def start(space: str, sampler: str = "grid", name: str = "s"):
        next(t for t in at.text_area if t.label.startswith("Search space")).set_value(space)
        at.selectbox(key="study_sampler").set_value(sampler)
        at.selectbox(key="study_pruner").set_value("none")
        at.number_input(key="study_trials").set_value(2)
        at.text_input(key="study_name").set_value(name)
        next(b for b in at.button if b.label == "Start study").click().run()

    start("lr=0.01:0.1")  # a range cannot be a grid
    assert any("Not started" in e.value and "grid sampler needs lists" in e.value for e in at.error)
    start("seed=1,2", name="../escape")
    assert any("Not started" in e.value and "study name" in e.value for e in at.error)
    start("seed=1,2")
    assert not at.exception and any("Study **s** started" in m.value for m in at.success)
    log, deadline = isolated / "s.tune.log", time.time() + 500
    while time.time() < deadline and "study s:" not in log.read_text():  # its summary: the tune process ended
        time.sleep(2)
    assert sorted((r.id, r.state, r.sweep) for r in Registry(isolated).list()) == [
        ("s-000", "finished", "s"), ("s-001", "finished", "s")], (isolated / "s.tune.log").read_text()[-2000:]
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{isolated.resolve() / 'optuna.db'}")
    assert sorted(t.params["seed"] for t in study.trials) == [1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_missing_dataset_is_said_when_the_page_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FER_DATA", str(tmp_path / "nowhere.zip"))
    at = open_page()
    assert any("No usable dataset yet" in w.value and "does not exist" in w.value for w in at.warning)
    start = next(b for b in at.button if b.label == "Start training")
    assert start.disabled and "does not exist" in start.help, "Start is disabled, with the reason"


def test_every_option_has_a_cli_flag_and_a_form_widget_with_the_same_bounds(isolated):
    """TrainConfig is the one definition of a training option: the parser and the form are made from it."""
    from fer_core.training.config import get_args_parser, options
    flags = {a.dest: a for a in get_args_parser()._actions}
    at = open_page()
    widgets = {w.key: w for kind in ("selectbox", "number_input", "checkbox", "text_input")
               for w in getattr(at, kind) if w.key and w.key.startswith("new_")}
    for name, o in options().items():
        assert name in flags, f"--{name.replace('_', '-')} is missing"
        if not o.in_form:
            continue
        widget = widgets.get(f"new_{name}")
        assert widget is not None, f"the form has no widget for {name}"
        if o.allowed() is not None and widget.type == "selectbox" and name != "device":
            assert list(widget.options) == [str(c) for c in o.allowed()], name
            assert list(flags[name].choices) == list(o.allowed()), name
        if widget.type == "number_input":
            assert widget.min == (o.low if o.low is not None and not o.low_open else None) or name == "batch_size"
            assert widget.max == (o.high if o.high is not None and not o.high_open else None), name


def _running(epochs: int):
    from datetime import datetime, timezone

    from fer_core.runs.index import Run
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return Run(id="r", arch="fer_vgg_small", state="running", slot="cpu", sweep=None, gpus=1, resume=0, pid=None,
               created=now, started=now, ended=None, epochs=epochs, epochs_done=0, best_val_accuracy=None,
               test_accuracy=None, test_accuracy_tta=None, error=None, config="{}")


def test_progress_moves_within_an_epoch():
    """The bar and the ETA move with the batches, not once per epoch (about 6 minutes on an AVX2 CPU)."""
    from dashboard.train.runs import run_progress
    first = run_progress(_running(4), [], {"epoch_batches": [1, 50, 100, 30.0]})
    assert first.fraction == pytest.approx(0.125) and first.eta_s == pytest.approx(60 * 3.5)
    metrics = [{"seconds": 60.0, "images_per_s": 400.0}]
    later = run_progress(_running(4), metrics, {"epoch_batches": [2, 25, 100, 15.0]})
    assert later.fraction == pytest.approx(1.25 / 4) and later.eta_s == pytest.approx(60 * 2.75)
    stale = run_progress(_running(4), metrics, {"epoch_batches": [1, 100, 100, 60.0]})  # last epoch's report
    assert stale.fraction == pytest.approx(0.25)


def test_training_reports_its_batches_and_its_final_evaluation(tmp_path, make_kaggle_zip, monkeypatch):
    import json

    from fer_core.data.fer2013 import load_dataset
    from fer_core.rundir.folder import RunFolder
    from fer_core.training import train as train_module
    from fer_core.training.config import TrainConfig
    monkeypatch.setattr(train_module, "PROGRESS_EVERY_S", 0.0)
    data = make_kaggle_zip()
    phases, evaluation_views = [], []
    real_eval, real_update = train_module.final_eval, RunFolder.update_status

    def watching(run, *args, **kw):
        phases.append(run.status()[0].get("phase"))
        return real_eval(run, *args, **kw)

    def recording(self, **fields):
        if "evaluation_views" in fields:
            evaluation_views.append(fields["evaluation_views"])
        real_update(self, **fields)
    monkeypatch.setattr(train_module, "final_eval", watching)
    monkeypatch.setattr(RunFolder, "update_status", recording)
    run_dir = train_module.main(TrainConfig(data=str(data), out=str(tmp_path), epochs=1, batch_size=16,
                                            tta_views=2, device="cpu"))
    status = json.loads((run_dir / "status.json").read_text())
    epoch, done, total, seconds = status["epoch_batches"]
    assert (epoch, done) == (1, total) and seconds > 0
    assert phases == ["evaluating"] and status["state"] == "finished" and status.get("phase") is None
    # the evaluation's own progress: face views over val and test, plain (1 view) and TTA (2 views), up to all of them
    splits = load_dataset(data, cache_dir=tmp_path / "cache").splits
    all_views = 3 * (len(splits["val"].images) + len(splits["test"].images))
    done_views = [d for d, _ in evaluation_views]
    assert done_views == sorted(done_views) and len(done_views) > 2
    assert evaluation_views[-1] == [all_views, all_views]


def test_progress_during_the_final_evaluation():
    from dashboard.train.runs import run_progress
    metrics = [{"seconds": 60.0, "images_per_s": 400.0}] * 4
    evaluating = run_progress(_running(4), metrics, {"phase": "evaluating", "evaluation_views": [300, 1200]})
    assert evaluating.fraction == 1.0 and evaluating.evaluation == pytest.approx(0.25)
    assert run_progress(_running(4), metrics, {"phase": "evaluating"}).evaluation == 0.0  # not reported yet
    assert run_progress(_running(4), metrics, {}).evaluation is None


def test_the_page_shows_the_final_evaluation_moving(isolated):
    """After the last epoch the bar shows the evaluation's own progress instead of standing full."""
    import json
    import os

    from fer_core.rundir.folder import RunFolder
    from fer_core.training.config import TrainConfig
    registry = Registry(isolated)
    run_id = registry.submit(TrainConfig(arch="fer_vgg_small", epochs=2), start_worker=False)
    registry.started(run_id, os.getpid())
    folder = RunFolder.named(isolated, run_id)
    folder.path.mkdir(parents=True)
    folder.write_config(json.loads(registry.get(run_id).config))
    folder.update_status(state="running", epoch=2, phase="evaluating", evaluation_views=[300, 1200])
    with folder.lock():  # the trainer's lock: the job is alive
        at = open_page()
    (bar,) = [e.proto for e in at.get("progress") if "evaluating the best epoch" in e.proto.text]
    assert "25%" in bar.text and bar.value == 25


def test_enter_in_a_field_of_the_train_forms_does_not_queue_a_run(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    forms = {f.proto.form.form_id: f.proto.form for f in at.get("form")}
    assert "new_run" in forms and all(not form.enter_to_submit for form in forms.values())

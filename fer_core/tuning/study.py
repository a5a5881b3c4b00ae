"""A hyperparameter study: Optuna's ask-and-tell loop, each trial an ordinary training run.

`run_study` asks the study for a trial's parameters, trains it as a run folder named `<study>-<number>` (so
Compare, ship and resume work on it), and tells the study how it ended: its best PublicTest accuracy, or
pruned, or failed. PrivateTest is never the objective. The trial reports every epoch itself (through
trial.STUDY_LINK, handed to the run by whoever starts it), so it is the same whether it trains in this process
or is queued as a job of the registry (`queue`: one job at a time per device, as the Train page runs them).
Several processes, on one machine or many, share a study through its storage; each asks for the next trial
when it is free.
"""
from __future__ import annotations

import itertools
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FERError
from ..paths import NAME_MAX, BadNameError, check_name
from ..rundir.folder import RunFolder, run_path
from ..training.config import TrainConfig, TrialRef
from .trial import PRUNER_ATTR, PRUNERS, STUDY_LINK, make_pruner, storage_of
from .config import SAMPLERS
from .space import Dimension, SpaceError, grid_of, trial_config

STORAGE_FILE = "optuna.db"
SPACE_ATTR = "fer_space"
SAMPLER_ATTR = "fer_sampler"
POLL_S = 2.0
MAX_FAILED_IN_A_ROW = 3  # then the space or the options are wrong, not the luck of one trial: stop


def default_storage(runs_dir: str | os.PathLike, create: bool = True) -> str:
    """A SQLite file in the runs folder: enough for the processes of one machine (`create`: its folder too)."""
    if create:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(Path(runs_dir) / STORAGE_FILE).resolve()}"


def make_sampler(name: str, dims: list[Dimension], seed: int | None = None):
    """Optuna's sampler for `name`. The grid is enqueued as fixed trials instead (open_study): GridSampler stops
    the study from inside `tell`, which only works under Study.optimize, not in this ask-and-tell loop.
    With a seed, each trial's draws are seeded by the seed and the trial's number (PerTrialSeed)."""
    import optuna
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler '{name}': expected one of {', '.join(SAMPLERS)}")
    if name == "grid":
        grid_of(dims)  # refuses ranges
    from .seeding import PerTrialSeed
    kind = optuna.samplers.TPESampler if name == "tpe" else optuna.samplers.RandomSampler
    return kind(seed=None) if seed is None else PerTrialSeed(lambda s: kind(seed=s), seed)



def run_name(study_name: str, number: int) -> str:
    return f"{study_name}-{number:03d}"


def is_trial_run(folder: Path, study_name: str, number: int, storage: str | None = None) -> bool:
    """True when `folder` is the run folder that trial `number` of study `study_name` made: named for the trial,
    with the trial in its config.json (and, given `storage`, the same storage): a folder of the same name from
    another study is not, nor from another storage when the storage is known."""
    if folder.name != run_name(study_name, number) or not (folder / RunFolder.CONFIG).is_file():
        return False
    config, _ = RunFolder(folder).config()
    try:
        ref = TrialRef.parse(str(config.get("trial") or ""))
    except ValueError:
        return False
    return (ref.study, ref.number) == (study_name, number) and storage in (None, ref.storage)


def _mark_run_failed(study, trial) -> None:
    """A trial whose worker stopped beating: its run folder says so too, where this machine can see it. The
    folder is the storage's word: it is touched only when it is this trial's own run (is_trial_run)."""
    folder = Path(str(trial.user_attrs.get("run") or ""))
    if (trial.user_attrs.get("run") and is_trial_run(folder, study.study_name, trial.number)
            and RunFolder(folder).status()[0].get("state") not in ("finished", "pruned")  # an ended run stays so
            and not RunFolder(folder).trainer_alive()):
        RunFolder(folder).record_failure("its tune worker stopped: no heartbeat from this trial, marked failed "
                                         "in the study")


def open_study(name: str, storage: str, sampler: str, pruner: str, dims: list[Dimension], epochs: int,
               seed: int | None = None):
    """The study `name` in `storage`, created on first use. A later `tune` with the same name continues it;
    its search space and pruner must be those it was created with. Trials whose worker died are marked failed."""
    import optuna
    check_name(name, "study name")
    if len(run_name(name, 0)) > NAME_MAX:
        raise BadNameError(f"study name '{name[:40]}…' is {len(name)} characters long: at most {NAME_MAX - 4}, since "
                           f"its trials' runs are named <study>-NNN")
    if pruner not in PRUNERS:
        raise ValueError(f"unknown pruner '{pruner}': expected one of {', '.join(PRUNERS)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    chosen_sampler, chosen_pruner = make_sampler(sampler, dims, seed), make_pruner(pruner, epochs)  # may refuse
    try:
        study = optuna.create_study(study_name=name, storage=storage_of(storage, _mark_run_failed),
                                    direction="maximize", load_if_exists=True,
                                    sampler=chosen_sampler, pruner=chosen_pruner)
    except Exception as exc:  # the database's own errors (unreachable server, bad URL): one line
        raise FERError(f"cannot open study '{name}' in {_safe_url(storage)}: {type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:300]}") from None
    space = [str(d) for d in dims]
    attrs = study.user_attrs
    if SPACE_ATTR in attrs and (attrs[SPACE_ATTR] != space or attrs.get(PRUNER_ATTR) != pruner):
        raise SpaceError(f"study '{name}' was created with the space {' '.join(attrs[SPACE_ATTR])} and the "
                       f"{attrs.get(PRUNER_ATTR)} pruner: give the same to continue it, or another --study name")
    if SPACE_ATTR not in attrs:
        study.set_user_attr(SPACE_ATTR, space)
        study.set_user_attr(PRUNER_ATTR, pruner)
        study.set_user_attr(SAMPLER_ATTR, sampler)
        if sampler == "grid":  # every combination, once, taken by whichever worker asks next
            grid = grid_of(dims)
            for values in itertools.product(*grid.values()):
                study.enqueue_trial(dict(zip(grid, values)))
    optuna.storages.fail_stale_trials(study)
    return study


def _safe_url(url: str) -> str:
    """A storage URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    return f"{head.split('//')[0]}//…@{tail}" if at and "//" in head else url


def counted_trials(study) -> int:
    """Trials that count towards --trials: those started (running, complete or pruned); a failed trial is asked
    for again, and a waiting one (a grid's enqueued point) is not started yet."""
    import optuna
    started = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=started))


@dataclass
class StudyReport:
    trials: list[dict] = field(default_factory=list)   # this worker's trials: number, run, state, value, params

    def add(self, **row) -> None:
        self.trials.append(row)


def run_study(study, base: TrainConfig, dims: list[Dimension], storage: str, trials: int | None = None,
              timeout_s: float | None = None, queue=None, log=None) -> StudyReport:
    """Ask, train and tell until the study has `trials` trials (failed ones aside) or `timeout_s` is spent
    (checked between trials), or the grid is done. `queue`: a Registry to run each trial as a job of."""
    import optuna
    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    report, start = StudyReport(), time.monotonic()
    distributions = {d.name: d.distribution() for d in dims}
    failed_in_a_row = 0
    while True:
        if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
            raise FERError(f"{failed_in_a_row} trials in a row failed (the last: {report.trials[-1]['error']}): "
                           f"stopping the study; check the search space and the options")
        optuna.storages.fail_stale_trials(study)
        if trials is not None and counted_trials(study) >= trials:
            break
        if timeout_s is not None and time.monotonic() - start >= timeout_s:
            log(f"time budget of {timeout_s:.0f} s spent: no new trial")
            break
        if study.user_attrs.get(SAMPLER_ATTR) == "grid" and not study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            break  # every point of the grid has been taken
        trial = study.ask(distributions)
        name = run_name(study.study_name, trial.number)
        ref = TrialRef(study.study_name, trial.number, storage)
        try:
            cfg = trial_config(base, trial.params, name=name, trial=str(ref), track_test=False)
        except ValueError as exc:  # a sampled combination train refuses: failed, the study goes on
            _fail(study, trial, str(exc))
            report.add(number=trial.number, run=None, state="failed", value=None, params=trial.params, error=str(exc))
            log(f"trial {trial.number}: {exc}")
            failed_in_a_row += 1
            continue
        folder = run_path(cfg.out, name)
        if folder.exists() or folder.is_symlink():  # another study's run (another storage, a deleted database)
            problem = (f"run folder {folder} already exists and is not this trial's: the runs folder holds runs of "
                       f"another study named '{study.study_name}'")
            _fail(study, trial, problem)
            raise FERError(f"{problem}; choose another --study name or --out folder")
        trial.set_user_attr("run", str(folder.resolve()))
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        study._storage.record_heartbeat(trial._trial_id)  # until the trainer's own heartbeat takes over
        log(f"trial {trial.number}: {name} with {_params_text(trial.params)}")
        stopped, failure = _train(cfg, study, trial, queue, log)
        state, value, error = _tell(study, trial, folder, str(ref), failure)
        report.add(number=trial.number, run=str(folder), state=state, value=value, params=trial.params, error=error)
        log(f"trial {trial.number}: {state}" + (f", best PublicTest {value:.4f}" if value is not None else "")
            + (f" ({error})" if error else ""))
        failed_in_a_row = failed_in_a_row + 1 if state == "failed" else 0
        if stopped:
            break
    return report


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _train(cfg: TrainConfig, study, trial, queue, log) -> tuple[bool, str | None]:
    """Train one trial: (the user stopped it, so the loop stops too; why it failed, when it did)."""
    if queue is None:
        from ..training import train
        try:
            train.main(cfg, trial_link=STUDY_LINK)
        except KeyboardInterrupt:
            return True, None
        except Exception as exc:  # noqa: BLE001 - a failed trial is told as failed; the study goes on
            log(f"trial {trial.number} failed: {type(exc).__name__}: {exc}")
            return False, f"{type(exc).__name__}: {exc}"[:500]
        return RunFolder(run_path(cfg.out, cfg.name)).status()[0].get("state") == "cancelled", None
    run_id = queue.submit(cfg, sweep=study.study_name)
    while True:
        run = queue.get(run_id)
        if run.state not in ("queued", "running"):
            return run.state == "cancelled", run.error
        study._storage.record_heartbeat(trial._trial_id)  # while it waits in the queue, and trains
        time.sleep(POLL_S)
        queue.list()  # reconciles the row with its run folder


def _fail(study, trial, error: str) -> None:
    import optuna
    trial.set_user_attr("error", error[:500])
    study.tell(trial, state=optuna.trial.TrialState.FAIL)


def _tell(study, trial, folder: Path, ref: str, failure: str | None = None) -> tuple[str, float | None, str | None]:
    """Tell the study how the trial's run ended: (state, objective value, error). Only a run folder this trial
    made counts: its config.json must name the trial (`ref`), else the trial failed, whatever the folder holds.
    `failure`: why training failed, where the trainer said so."""
    import optuna
    run = RunFolder(folder)
    if not is_trial_run(folder, study.study_name, trial.number, TrialRef.parse(ref).storage):
        error = failure or (f"the run folder {folder} belongs to another trial (another storage?)" if folder.exists()
                            else f"no run folder of this trial at {folder}: the run never started")
        _fail(study, trial, error)
        return "failed", None, error
    state = run.status()[0].get("state")
    metrics, _ = run.metrics()
    best = max((m["val_accuracy"] for m in metrics), default=None)
    if state == "finished" and best is not None:
        study.tell(trial, best)
        return "complete", best, None
    if state == "pruned":
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return "pruned", best, None
    error = str(run.status()[0].get("error") or failure or f"the run ended {state}")
    _fail(study, trial, error)
    return "failed", None, error


def study_summary(study, epochs: int) -> dict:
    """Trials by state, the best trial, and the epochs trained against what running every trial to its last
    epoch would have cost (what pruning saved), from the trials' run folders."""
    import optuna
    trials = study.get_trials(deepcopy=False)
    states = {s.name.lower(): sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    trained, seconds, full_seconds = 0, 0.0, 0.0
    for t in trials:
        if t.state not in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED):
            continue
        metrics, _ = RunFolder(t.user_attrs.get("run", "")).metrics() if t.user_attrs.get("run") else ([], "")
        trained += len(metrics)
        run_seconds = sum(m.get("seconds", 0.0) for m in metrics)
        seconds += run_seconds
        full_seconds += run_seconds / len(metrics) * epochs if metrics else 0.0
    summary = {"states": {k: v for k, v in states.items() if v}, "epochs_trained": trained,
               "epochs_if_all_ran": epochs * (states.get("complete", 0) + states.get("pruned", 0)),
               "training_seconds": seconds, "training_seconds_if_all_ran": full_seconds}
    try:
        best = study.best_trial
        summary["best"] = {"number": best.number, "value": best.value, "params": best.params,
                           "run": best.user_attrs.get("run")}
    except ValueError:  # no complete trial yet
        pass
    return summary

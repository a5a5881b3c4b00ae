"""A training run that is a trial of an Optuna study (`python -m fer_core tune`): after every epoch it reports
its PublicTest accuracy to the study, and it stops, pruned, when the study's pruner says so.

The run knows its trial by `TrainConfig.trial`, "STUDY#NUMBER@STORAGE_URL" (training.config.TrialRef), so the same
code serves a trial trained inside the `tune` process and one queued as an ordinary job of the registry (its
`python -m fer_core train --trial ...`). Training does not import this module: whoever starts a run hands it
`STUDY_LINK` (training.train.TrialLink), so the loop below stays free of Optuna. The pruner is not kept in
Optuna's storage; the study keeps its name (PRUNER_ATTR) and every process builds it from that. While the run
trains, a thread records the trial's heartbeat: when the process dies, the heartbeats stop and any `tune`
process of the study marks the trial failed (fail_stale_trials).
"""
from __future__ import annotations

import threading
from pathlib import Path

from ..errors import FERError
from ..training.config import TrainConfig, TrialRef

PRUNERS = ("median", "hyperband", "successive-halving", "none")
PRUNER_ATTR = "fer_pruner"
HEARTBEAT_S = 20      # a trial's heartbeat period while it trains ...
GRACE_S = 120         # ... and the silence after which another process marks it failed


def make_pruner(name: str, epochs: int):
    """The pruner called `name` for trials of `epochs` epochs: median (a trial below the median of the earlier
    trials at the same epoch, once 3 trials have finished, from the 2nd epoch on), Hyperband and successive
    halving (from 1 epoch up to `epochs`), or none."""
    import optuna
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 2), reduction_factor=3)
    if name == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner '{name}': expected one of {', '.join(PRUNERS)}")


def storage_of(url: str, on_stale_trial=None, create_tables: bool = True):
    """Optuna's database storage at `url`, with the heartbeat that lets a dead worker's trial be failed
    (`on_stale_trial(study, trial)` is then called for it)."""
    import warnings

    import optuna
    # Optuna calls heartbeats with ask-and-tell experimental and warns once per use; this is the documented way
    # to fail a dead worker's trials outside Study.optimize (optuna.storages.fail_stale_trials)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                      heartbeat_stale_trial_callback=on_stale_trial,
                                      skip_table_creation=not create_tables)


def load_trial(ref: TrialRef, epochs: int, create_tables: bool = True):
    """The optuna.Trial `ref` names, in its study with the study's pruner."""
    import optuna
    storage = storage_of(ref.storage, create_tables=create_tables)
    study_id = storage.get_study_id_from_name(ref.study)
    pruner = make_pruner(storage.get_study_user_attrs(study_id).get(PRUNER_ATTR, "none"), epochs)
    study = optuna.load_study(study_name=ref.study, storage=storage, pruner=pruner)
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, ref.number)
    return optuna.trial.Trial(study, trial_id), storage, trial_id


def check_trial(text: str, epochs: int) -> None:
    """Before a run folder is made: FERError in one line unless `text` names a trial that exists in a study of a
    database this process can open."""
    ref = TrialRef.parse(text)
    if ref.storage.startswith("sqlite:///") and not Path(ref.storage[len("sqlite:///"):]).is_file():
        raise FERError(f"--trial {ref.study}#{ref.number}: its database {ref.storage} does not exist")
    try:
        load_trial(ref, epochs, create_tables=False)  # a check adds no tables to whatever database it is given
    except Exception as exc:  # a file that is no database, a study or trial not there, a server that does not answer
        reason = "no such study or trial" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:200]
        raise FERError(f"--trial {ref.study}#{ref.number}: cannot use it ({type(exc).__name__}: {reason})") from None


class TrialReporter:
    """`report(epoch, val_accuracy)` -> True when the trial is to stop, pruned. A context manager: the heartbeat
    thread runs inside it."""

    def __init__(self, ref: str, epochs: int):
        self.ref = TrialRef.parse(ref)
        self.trial, self._storage, self._trial_id = load_trial(self.ref, epochs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="optuna-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.is_set():
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception:  # noqa: BLE001 - a database hiccup must not stop the training; the next beat retries
                pass
            self._stop.wait(HEARTBEAT_S)

    def __enter__(self) -> "TrialReporter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()

    def report(self, epoch: int, val_accuracy: float) -> bool:
        self.trial.report(val_accuracy, step=epoch)
        return self.trial.should_prune()


class StudyLink:
    """What training needs of a run's study (training.train.TrialLink): the check before the run folder is made,
    and the reporter the loop reports each epoch to."""

    def check(self, cfg: TrainConfig) -> None:
        check_trial(cfg.trial, cfg.epochs)

    def reporter(self, cfg: TrainConfig) -> TrialReporter:
        return TrialReporter(cfg.trial, cfg.epochs)


STUDY_LINK = StudyLink()

"""Starting a study from the Train page: its `tune --queue` process, detached so it outlives the dashboard;
each trial it asks for is queued as an ordinary job of the registry."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ..paths import PROJECT_ROOT, named_path
from ..training.config import TrainConfig, config_to_args
from .space import Dimension
from .study import default_storage, open_study


def tune_command(base: TrainConfig, dims: list[Dimension], sampler: str, pruner: str, trials: int, study: str,
                 storage: str) -> list[str]:
    return [sys.executable, "-m", "fer_core", "tune", "--queue", "--space", *map(str, dims), "--sampler", sampler,
            "--pruner", pruner, "--trials", str(trials), "--study", study, "--storage", storage,
            *config_to_args(base)]


def start_study(base: TrainConfig, dims: list[Dimension], sampler: str, pruner: str, trials: int, study: str,
                runs_dir: str | os.PathLike) -> Path:
    """Create (or check, to continue it) the study here, so a bad space or name is said at once; then start its
    tune process. Returns the process's log file, runs/<study>.tune.log."""
    base = replace(base, out=str(runs_dir))
    base.validate()
    storage = default_storage(runs_dir)
    open_study(study, storage, sampler, pruner, dims, base.epochs)
    log_path = named_path(runs_dir, study, ".tune.log", "study name")
    with open(log_path, "ab") as log:
        subprocess.Popen(tune_command(base, dims, sampler, pruner, trials, study, storage), cwd=PROJECT_ROOT,
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return log_path

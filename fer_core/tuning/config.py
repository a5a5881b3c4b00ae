"""`tune`'s own options, declared as TrainConfig's are (training/config.py: a field with its Option each), so the
parser and the validation come from one definition. Every training option is, besides, the base of each trial."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..training.config import check_option, option
from .trial import PRUNERS

SAMPLERS = ("tpe", "random", "grid")
GROUP = "Study"


@dataclass
class StudyConfig:
    study: str = option("study", "Study name", GROUP, help="the study's name: a later tune with it continues it")
    sampler: str = option("tpe", "Sampler", GROUP, choices=SAMPLERS, help="how trials are chosen")
    sampler_seed: int | None = option(None, "Sampler seed", GROUP, help="the sampler's seed (default: random)")
    pruner: str = option("median", "Pruner", GROUP, choices=PRUNERS,
                         help="what stops a losing trial early, from its PublicTest accuracy per epoch: median (below "
                              "the median of earlier trials at the same epoch, once 3 trials have finished, from the "
                              "2nd epoch on), hyperband, successive-halving or none")
    trials: int | None = option(None, "Trials", GROUP, low=0,
                                help="stop when the study has this many trials (failed ones aside), counting every "
                                     "worker's; 0 only makes the study, for workers to share")
    timeout: float | None = option(None, "Time limit", GROUP, low=0, low_open=True, metavar="SECONDS",
                                   help="start no trial after this long (a running trial finishes)")
    storage: str | None = option(None, "Storage", GROUP, metavar="URL",
                                 help="Optuna storage shared by the workers: default a SQLite file in the runs folder "
                                      "(runs/optuna.db); postgresql://user:password@host/db for several machines")
    queue: bool = option(False, "Queue the trials", GROUP, switch=True,
                         help="run each trial as a job of the runs registry (one at a time per device, beside the "
                              "Train page's jobs) instead of in this process")

    def validate(self) -> None:
        """ValueError naming the first bad option; a study must end: --trials, --timeout, or the grid sampler."""
        for f in fields(self):
            problem = check_option(f, getattr(self, f.name), StudyConfig)
            if problem:
                raise ValueError(problem)
        if self.trials is None and self.timeout is None and self.sampler != "grid":
            raise ValueError("give --trials N or --timeout SECONDS (the grid sampler stops by itself)")


def study_config_from_args(args) -> StudyConfig:
    names = {f.name for f in fields(StudyConfig)}
    return StudyConfig(**{k: v for k, v in vars(args).items() if k in names})

"""A seeded sampler that stays reproducible across workers: a plain seeded Optuna sampler draws the same values in
every process that starts with the same seed, so two workers (or a second `tune` of a study) repeat each other."""
from __future__ import annotations

import optuna


class PerTrialSeed(optuna.samplers.BaseSampler):
    """The sampler `factory(seed + trial number)`, made anew for every trial: each trial's draws are fixed by the
    seed and its number, and no two trials share them."""

    def __init__(self, factory, seed: int):
        self._factory, self._seed = factory, seed
        self._inner = factory(seed)

    def before_trial(self, study, trial) -> None:
        self._inner = self._factory(self._seed + trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)

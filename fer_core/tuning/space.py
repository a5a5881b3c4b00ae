"""A study's search space: which training options vary, and how, written as the command line and the Train page
give it, one option per entry:

    lr=0.005:0.2:log          a range, sampled on a log scale
    weight_decay=0:0.001      a range, linear
    label_smoothing=0,0.1,0.2 a list of choices
    optimizer=sgd,adamw

The options are TrainConfig's sweepable ones, and every bound and choice passes the option's own validation, so
a space that tunes outside what `train` accepts is refused before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..paths import shown
from ..training.config import TrainConfig, sweepable, value_type


class SpaceError(ValueError):
    pass


@dataclass(frozen=True)
class Dimension:
    name: str
    low: float | int | None = None    # a range ...
    high: float | int | None = None
    log: bool = False
    choices: tuple | None = None      # ... or a list of choices

    def distribution(self):
        import optuna
        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(self.choices)
        if value_type(self.name) is int:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def __str__(self) -> str:
        if self.choices is not None:
            return f"{self.name}={','.join(map(str, self.choices))}"
        return f"{self.name}={self.low:g}:{self.high:g}" + (":log" if self.log else "")


def _value(name: str, text: str):
    kind = value_type(name)
    try:
        return kind(text) if kind is not bool else {"on": True, "true": True, "off": False, "false": False}[text.lower()]
    except (ValueError, KeyError):
        expected = {int: "an integer", float: "a number", bool: "on or off"}.get(kind, "a word")
        raise SpaceError(f"{name}: '{shown(text)}' is not {expected}") from None


def _check_value(name: str, value) -> None:
    try:
        TrainConfig(**{name: value}).validate()
    except ValueError as exc:
        raise SpaceError(f"{name}: {exc}") from None


def parse_dimension(text: str) -> Dimension:
    name, eq, spec = text.strip().partition("=")
    name = name.strip().replace("-", "_")
    if not eq or not spec.strip():
        raise SpaceError(f"'{shown(text)}': expected NAME=LOW:HIGH[:log] or NAME=A,B,C")
    if name not in sweepable():
        raise SpaceError(f"'{shown(name)}' cannot be tuned: choose among {', '.join(sweepable())}")
    spec = spec.strip()
    if ":" in spec:
        parts = spec.split(":")
        log = len(parts) == 3 and parts[2].strip().lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log) or value_type(name) not in (int, float):
            raise SpaceError(f"{name}: a range is LOW:HIGH or LOW:HIGH:log, for a numeric option")
        low, high = (_value(name, p.strip()) for p in parts[:2])
        if not low < high:
            raise SpaceError(f"{name}: the range's low end ({low:g}) must be below its high end ({high:g})")
        if log and low <= 0:
            raise SpaceError(f"{name}: a log range must start above 0")
        _check_value(name, low)
        _check_value(name, high)
        return Dimension(name, low, high, log)
    choices = tuple(dict.fromkeys(_value(name, v.strip()) for v in spec.split(",") if v.strip()))
    if len(choices) < 2:
        raise SpaceError(f"{name}: give at least two choices, or a range LOW:HIGH")
    for choice in choices:
        _check_value(name, choice)
    return Dimension(name, choices=choices)


def parse_space(entries: list[str]) -> list[Dimension]:
    """The dimensions of `entries` (command-line values, or a file's lines; blank lines and # comments skipped)."""
    dims = [parse_dimension(e) for e in entries if e.strip() and not e.lstrip().startswith("#")]
    if not dims:
        raise SpaceError("the search space is empty: give at least one option to tune, e.g. lr=0.005:0.2:log")
    names = [d.name for d in dims]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpaceError(f"{', '.join(twice)} given twice in the search space")
    return dims


def grid_of(dims: list[Dimension]) -> dict[str, list]:
    """The grid sampler's search space: every dimension must be a list of choices."""
    ranges = [d.name for d in dims if d.choices is None]
    if ranges:
        raise SpaceError(f"the grid sampler needs lists of values, not ranges ({', '.join(ranges)}): "
                         "give A,B,C, or use the tpe or random sampler")
    return {d.name: list(d.choices) for d in dims}


def trial_config(base: TrainConfig, params: dict, **fields) -> TrainConfig:
    """`base` with a trial's parameters (and `fields`, e.g. its name), validated."""
    cfg = replace(base, **params, **fields)
    cfg.validate()
    return cfg

"""Training commands: `train` (one run) and `tune` (a hyperparameter study of runs)."""
from __future__ import annotations

import json
import sys

from .common import json_option


def cmd_train(args) -> int:
    from ..training.config import config_from_args
    from ..training.train import main
    config = config_from_args(args)
    try:
        config.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = main(config, resume=args.resume)
    print(run_dir)
    return 0


def cmd_tune(args) -> int:
    """A hyperparameter study (fer_core/tuning): trials as run folders, pruned by epoch, shared through --storage."""
    from ..paths import read_text_file
    from ..runs.registry import Registry
    from ..training.config import config_from_args
    from ..tuning.space import SpaceError, parse_space
    from ..tuning.study import default_storage, open_study, run_study, study_summary
    if args.resume or args.name or args.trial:
        print("error: tune names its trials <study>-<number> and continues a study by its --study name "
              "(--name, --resume and --trial are for train)", file=sys.stderr)
        return 2
    entries = list(args.space or [])
    if args.space_file:
        entries += read_text_file(args.space_file, "search space file", max_bytes=1 << 20).splitlines()
    try:
        dims = parse_space(entries)
        base = config_from_args(args)
        base.validate()
    except (SpaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.trials is None and args.timeout is None and args.sampler != "grid":
        print("error: give --trials N or --timeout SECONDS (the grid sampler stops by itself)", file=sys.stderr)
        return 2
    storage = args.storage or default_storage(base.out)
    try:
        study = open_study(args.study, storage, args.sampler, args.pruner, dims, base.epochs, args.sampler_seed)
    except (SpaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_study(study, base, dims, storage, args.trials, args.timeout, Registry(base.out) if args.queue else None)
    summary = study_summary(study, base.epochs)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"study {args.study}: " + ", ".join(f"{n} {state}" for state, n in summary["states"].items()))
    print(f"epochs trained: {summary['epochs_trained']} of {summary['epochs_if_all_ran']} had every trial run to "
          f"its end; training time {summary['training_seconds'] / 60:.1f} min of about "
          f"{summary['training_seconds_if_all_ran'] / 60:.1f}")
    if "best" in summary:
        best = summary["best"]
        print(f"best: trial {best['number']}, PublicTest {best['value']:.4f}, {best['params']} ({best['run']})")
    return 0


def add_parsers(commands) -> None:
    from ..training.config import get_args_parser
    train = commands.add_parser("train", help="train a model into a run folder")
    get_args_parser(train)
    train.set_defaults(func=cmd_train)

    from ..training.trial import PRUNERS
    from ..tuning.study import SAMPLERS
    tune = commands.add_parser(
        "tune", help="a hyperparameter study (Optuna): trials as runs, pruned early, shared by workers",
        description="Every training option below is the base of each trial; --space says what varies.")
    tune.add_argument("--space", nargs="+", metavar="NAME=SPEC",
                      help="options to tune: NAME=LOW:HIGH (linear), NAME=LOW:HIGH:log, or NAME=A,B,C (choices), "
                           "e.g. lr=0.005:0.2:log weight_decay=0:0.001 label_smoothing=0,0.1,0.2")
    tune.add_argument("--space-file", metavar="FILE", help="the same, one option per line (# comments)")
    tune.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="how trials are chosen (default %(default)s)")
    tune.add_argument("--sampler-seed", type=int, default=None, help="the sampler's seed (default: random)")
    tune.add_argument("--pruner", choices=PRUNERS, default="median",
                      help="what stops a losing trial early, from its PublicTest accuracy per epoch: median (below the "
                           "median of earlier trials at the same epoch, once 3 trials have finished, from the 2nd "
                           "epoch on), hyperband, successive-halving or none (default %(default)s)")
    tune.add_argument("--trials", type=int, default=None,
                      help="stop when the study has this many trials (failed ones aside), counting every worker's")
    tune.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                      help="start no trial after this long (a running trial finishes)")
    tune.add_argument("--study", default="study", help="the study's name: a later tune with it continues it "
                                                      "(default %(default)s)")
    tune.add_argument("--storage", metavar="URL",
                      help="Optuna storage shared by the workers: default a SQLite file in the runs folder "
                           "(runs/optuna.db); postgresql://user:password@host/db for several machines")
    tune.add_argument("--queue", action="store_true",
                      help="run each trial as a job of the runs registry (one at a time per device, beside the "
                           "Train page's jobs) instead of in this process")
    json_option(tune, "print the study's summary as JSON")
    get_args_parser(tune)
    tune.set_defaults(func=cmd_tune)

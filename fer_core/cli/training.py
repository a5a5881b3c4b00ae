"""Training commands: `train` (one run) and `tune` (a hyperparameter study of runs)."""
from __future__ import annotations

import json
import sys

from .common import json_option


def cmd_train(args) -> int:
    from ..training.config import config_from_args
    from ..training.train import main
    from ..tuning.trial import STUDY_LINK
    config = config_from_args(args)
    try:
        config.validate()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = main(config, resume=args.resume, trial_link=STUDY_LINK)
    print(run_dir)
    return 0


def cmd_tune(args) -> int:
    """A hyperparameter study (fer_core/tuning): trials as run folders, pruned by epoch, shared through --storage."""
    from ..paths import read_text_file
    from ..runs.registry import Registry
    from ..training.config import config_from_args
    from ..tuning.config import study_config_from_args
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
        options = study_config_from_args(args)
        options.validate()
    except (SpaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    storage = options.storage or default_storage(base.out)
    try:
        study = open_study(options.study, storage, options.sampler, options.pruner, dims, base.epochs,
                           options.sampler_seed)
    except (SpaceError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_study(study, base, dims, storage, options.trials, options.timeout, Registry(base.out) if options.queue else None)
    summary = study_summary(study, base.epochs)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"study {options.study}: " + ", ".join(f"{n} {state}" for state, n in summary["states"].items()))
    print(f"epochs trained: {summary['epochs_trained']} of {summary['epochs_if_all_ran']} had every trial run to "
          f"its end; training time {summary['training_seconds'] / 60:.1f} min of about "
          f"{summary['training_seconds_if_all_ran'] / 60:.1f}")
    if "best" in summary:
        best = summary["best"]
        print(f"best: trial {best['number']}, PublicTest {best['value']:.4f}, {best['params']} ({best['run']})")
    return 0


def add_parsers(commands) -> None:
    from ..training.config import add_options, get_args_parser
    train = commands.add_parser("train", help="train a model into a run folder")
    get_args_parser(train)
    train.set_defaults(func=cmd_train)

    from ..tuning.config import StudyConfig
    tune = commands.add_parser(
        "tune", help="a hyperparameter study (Optuna): trials as runs, pruned early, shared by workers",
        description="Every training option below is the base of each trial; --space says what varies.")
    tune.add_argument("--space", nargs="+", metavar="NAME=SPEC",
                      help="options to tune: NAME=LOW:HIGH (linear), NAME=LOW:HIGH:log, or NAME=A,B,C (choices), "
                           "e.g. lr=0.005:0.2:log weight_decay=0:0.001 label_smoothing=0,0.1,0.2")
    tune.add_argument("--space-file", metavar="FILE", help="the same, one option per line (# comments)")
    add_options(tune, StudyConfig)
    json_option(tune, "print the study's summary as JSON")
    get_args_parser(tune)
    tune.set_defaults(func=cmd_tune)

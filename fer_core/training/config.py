"""The training configuration: `TrainConfig`, its validation, and its command line (parser and round trip).

The CLI, the job registry and the Train page build and check jobs with this module alone, without
importing the training loop.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields

from ..data.ferplus import LABEL_SOURCES, find_votes_file
from ..errors import CheckpointError, DataError
from ..evaluation import tta
from ..models.checkpoints import starting_weights
from ..models.devices import is_device_name
from ..models.registry import list_models, supports_pretrained
from ..paths import check_name, is_regular_file, shown
from .augment import AugmentConfig
from .balance import BALANCE_METHODS
from .mixing import MIX_METHODS

OPTIMIZERS = ("sgd", "adam", "nadam", "adamw")
SCHEDULERS = ("onecycle", "cosine", "plateau", "none")
MAX_TEACHER_VIEWS = 32  # each view of the 28,709 training faces holds 132 MB in memory
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "nadam": 1e-3, "adamw": 1e-3}


class TrialRefError(ValueError):
    pass


@dataclass(frozen=True)
class TrialRef:
    """The Optuna trial a run is (`--trial`), written "STUDY#NUMBER@STORAGE_URL"."""
    study: str
    number: int
    storage: str

    def __str__(self) -> str:
        return f"{self.study}#{self.number}@{self.storage}"

    @classmethod
    def parse(cls, text: str) -> "TrialRef":
        head, at, storage = text.partition("@")
        study, hash_, number = head.rpartition("#")
        if not (at and hash_ and study and storage and number.isdigit()):
            raise TrialRefError(f"expected STUDY#NUMBER@STORAGE_URL, got '{text[:80]}'")
        return cls(study, int(number), storage)


@dataclass(frozen=True)
class Option:
    """How one training option is checked and offered: on the command line (`get_args_parser`), in the Train
    page's form (generated from these) and in sweeps. Bounds are inclusive unless `*_open`."""
    label: str                               # the form's label; the CLI's flag is the field's name
    group: str                               # the form's section (GROUPS)
    help: str = ""
    choices: tuple | Callable[[], Sequence[str]] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    switch: bool = False                     # a flag without value (--compile); other booleans take on|off
    sweep: bool = False                      # a sweep may vary it
    metavar: str | None = None
    in_form: bool = True                     # False: set by the page itself (the run's name, its folder)

    def allowed(self) -> Sequence[str] | None:
        return self.choices() if callable(self.choices) else self.choices

    def bounds_text(self) -> str:
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{left}{_num(self.low)}, {_num(self.high) if self.high is not None else 'inf'}{right}"


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def option(default, label: str, group: str, **meta):
    return field(default=default, metadata={"option": Option(label, group, **meta)})


GROUPS = ("Model and data", "Optimisation", "Augmentation", "Distillation", "Evaluation and hardware", "Quick runs")


@dataclass
class TrainConfig:
    """Every training option, defined once: its type and default here, its bounds, choices, label and help in
    its Option. The CLI's parser, the validation, the sweepable options and the Train form come from these."""
    arch: str = option("fer_vgg_small", "Architecture", "Model and data", choices=list_models, sweep=True,
                       help="architecture")
    data: str | None = option(None, "Dataset (empty: $FER_DATA, then data/)", "Model and data",
                              help="dataset: Kaggle zip, its folder, or fer2013.csv (default $FER_DATA, then data/)")
    out: str = option("runs", "Runs folder", "Model and data", in_form=False, help="folder for run folders")
    name: str | None = option(None, "Run name (optional)", "Model and data", in_form=False,
                              help="run folder name (default: timestamp-arch)")
    epochs: int = option(30, "Epochs", "Model and data", low=1, sweep=True)
    batch_size: int | str = option(128, "Batch size", "Model and data", low=2, sweep=True,
                                   help="an integer or 'auto' (the largest that fits the GPU)")
    pretrained: str | None = option(None, "Pretrained weights", "Model and data",
                                    help="'imagenet' or a local state_dict file (vgg16, inception_v3, resnet18)")
    init: str | None = option(None, "Start from a trained model (fine-tune; empty = from scratch)", "Model and data",
                              metavar="MODEL",
                              help="fine-tune: start from the weights of this .pt checkpoint (e.g. models/default.pt), "
                                   "which must be of the same architecture and --crop")
    labels: str = option("fer2013", "Labels", "Model and data", choices=LABEL_SOURCES, sweep=True,
                         help="fer2013: the dataset's own labels; ferplus: the FER+ crowd's majority (images without "
                              "one left out, validation and test too); ferplus-soft: the crowd's vote shares as "
                              "soft targets (selected and reported on the majority)")
    ferplus: str | None = option(None, "FER+ votes file (empty: $FER_PLUS, then data/fer2013new.csv)", "Model and data",
                                 metavar="FILE", help="FER+'s fer2013new.csv, for --labels ferplus and ferplus-soft "
                                                      "(default $FER_PLUS, then data/fer2013new.csv)")
    exclude: str | None = option(None, "Exclude images", "Model and data",
                                 help="'audit' (leave out what the data-health audit flags) or a file of image ids")
    balance: str = option("none", "Class balancing", "Model and data", choices=BALANCE_METHODS, sweep=True,
                          help="weighted loss, oversampling or undersampling of the rare classes")
    optimizer: str = option("sgd", "Optimiser", "Optimisation", choices=OPTIMIZERS, sweep=True)
    lr: float | None = option(None, "Learning rate (peak for one-cycle)", "Optimisation", low=0, high=10,
                              low_open=True, high_open=True, sweep=True,
                              help="learning rate (peak for one-cycle); default per optimiser")
    weight_decay: float = option(5e-4, "Weight decay", "Optimisation", low=0, sweep=True)
    scheduler: str = option("onecycle", "Scheduler", "Optimisation", choices=SCHEDULERS, sweep=True)
    patience: int = option(0, "Early stopping patience (epochs, 0 = off)", "Optimisation", low=0,
                           help="early stopping after this many epochs without PublicTest gain (0: off)")
    label_smoothing: float = option(0.1, "Label smoothing", "Optimisation", low=0, high=1, high_open=True, sweep=True)
    ema: float = option(0.0, "Weight averaging (EMA decay, 0 = off)", "Optimisation", low=0, high=1, high_open=True,
                        metavar="DECAY",
                        help="evaluate and save a moving average of the weights with this decay, e.g. 0.999 (0: off)")
    flip: bool = option(True, "Horizontal flip", "Augmentation")
    alternating_flip: bool = option(False, "Alternating flip", "Augmentation", switch=True,
                                    help="mirror each image every other epoch instead of at random (airbench)")
    rotate: float = option(10.0, "Rotation (degrees)", "Augmentation", low=0, high=180, sweep=True, help="max degrees")
    zoom: float = option(0.1, "Zoom", "Augmentation", low=0, high=1, high_open=True, sweep=True,
                         help="max zoom fraction")
    shift: float = option(0.1, "Shift (fraction of side)", "Augmentation", low=0, high=0.5, high_open=True,
                          sweep=True, help="max shift, fraction of the side")
    erase: float = option(0.0, "Random erasing probability", "Augmentation", low=0, high=1, sweep=True)
    crop: int | None = option(None, "Random crop side (empty = off)", "Augmentation", low=16, high=47, metavar="SIDE",
                              help="train on random SIDE x SIDE crops (40 or 44 in the FER2013 literature); the "
                                   "network then takes whole faces and looks at their centre window")
    degrade: float = option(0.0, "Real-photo degradation probability", "Augmentation", low=0, high=1, sweep=True,
                            help="probability that a face is made to look like real photos' faces: shrunk and "
                                 "enlarged back (soft), relit (contrast, brightness, gamma), noisy (0: off)")
    mix: str = option("none", "Mix pairs of images", "Augmentation", choices=MIX_METHODS, sweep=True,
                      help="mixup or cutmix of image pairs (default none)")
    mix_alpha: float = option(1.0, "Mix alpha", "Augmentation", low=0, low_open=True, sweep=True,
                              help="Beta(alpha, alpha) of the mix")
    teacher: str | None = option(None, "Distil from (a .pt checkpoint or models/<ensemble>.json; empty = off)",
                                 "Distillation", metavar="MODEL",
                                 help="distillation: learn the probabilities of this checkpoint or saved ensemble "
                                      "(models/<name>.json) on the training images")
    distill_weight: float = option(0.7, "Share of the teacher's probabilities in the loss", "Distillation", low=0,
                                   high=1, sweep=True, help="share of the teacher's probabilities in the loss")
    teacher_views: int = option(0, "Augmented views the teacher labels (0 = the clean faces)", "Distillation", low=0,
                                high=MAX_TEACHER_VIEWS, metavar="K",
                                help="consistent teaching: before training, the teacher labels K augmented views of "
                                     "every training image and the student trains on those views (0: the teacher "
                                     "labels the clean images and their mirrors)")
    teacher_mirror: bool = option(False, "The teacher also labels each view's mirror", "Distillation", switch=True,
                                  help="with --teacher-views: the teacher's answer for each view is averaged with its "
                                       "answer for the view's mirror, and the student trains on each view or its "
                                       "mirror (labelling takes twice as long)")
    device: str = option("auto", "Device", "Evaluation and hardware", help="auto, cpu or cuda")
    amp: bool = option(True, "bf16 mixed precision", "Evaluation and hardware",
                       help="bf16 autocast where the device runs bf16 natively (CUDA, or a CPU with "
                            "AVX512-BF16/AMX); off: plain fp32")
    compile: bool = option(False, "torch.compile", "Evaluation and hardware", switch=True,
                           help="torch.compile the model")
    seed: int = option(0, "Seed", "Evaluation and hardware", low=0, high=2**31 - 1, sweep=True)
    tta_views: int = option(tta.DEFAULT_VIEWS, "TTA views (final evaluation)", "Evaluation and hardware", low=1,
                            high=tta.MAX_VIEWS, help="views for the final TTA evaluation")
    track_test: bool = option(False, "Log PrivateTest accuracy every epoch", "Evaluation and hardware", switch=True,
                              help="log PrivateTest accuracy every epoch (for time-to-accuracy; the best epoch is "
                                   "still chosen on PublicTest)")
    track_test_views: int = option(2, "PrivateTest TTA views logged per epoch", "Evaluation and hardware", low=1,
                                   high=tta.MAX_VIEWS,
                                   help="with --track-test: also log PrivateTest accuracy with this many TTA views "
                                        "(2: the image and its mirror; 1: plain only)")
    stop_at_test_accuracy: float | None = option(None, "Stop at PrivateTest accuracy (empty = never)",
                                                 "Evaluation and hardware", low=0, high=1, metavar="FRACTION",
                                                 help="with --track-test: stop once PrivateTest accuracy reaches this "
                                                      "(time-to-accuracy benchmarks)")
    limit: int | None = option(None, "Images per split (empty = all)", "Quick runs", low=8,
                               help="use a fixed random N images of each split (quick checks)")
    epoch_size: int | None = option(None, "Images per epoch (empty = the whole training set)", "Quick runs", low=8,
                                    help="train on a fresh random N training images per epoch (short budgets; "
                                         "val and test stay whole)")
    trial: str | None = option(None, "Optuna trial", "Quick runs", in_form=False, metavar="STUDY#N@STORAGE",
                               help="set by `tune`: the Optuna trial this run is; it reports PublicTest accuracy "
                                    "after every epoch and stops, pruned, when the study's pruner says so")

    def augment(self) -> AugmentConfig:
        return AugmentConfig(self.flip, self.rotate, self.zoom, self.shift, self.erase, self.crop, self.degrade)

    def validate(self) -> None:
        """Raise ValueError naming the first bad option (the dashboard form shows it too)."""
        if self.name is not None:
            check_name(self.name, "run name")
        if self.trial is not None:
            TrialRef.parse(self.trial)
        for f in fields(self):
            problem = check_option(f, getattr(self, f.name))
            if problem:
                raise ValueError(problem)
        if self.labels != "fer2013":
            try:
                find_votes_file(self.ferplus)
            except DataError as exc:
                raise ValueError(str(exc)) from None
        rules = [
            (is_device_name(self.device), "device must be auto, cpu or cuda"),
            (not (self.labels == "ferplus-soft" and self.teacher),
             "--labels ferplus-soft learns the crowd's vote shares: it cannot also learn a --teacher's"),
            (not self.teacher or is_regular_file(self.teacher), f"teacher model not found: {shown(self.teacher, 200)}"),
            (not self.teacher_views or self.teacher, "teacher views need --teacher"),
            (not self.teacher_mirror or self.teacher_views, "--teacher-mirror needs --teacher-views (the clean "
             "teaching already labels each face's mirror)"),
            (not self.teacher_mirror or self.flip, "--teacher-mirror trains on mirrored faces: it needs --flip on"),
            (not self.teacher_views or not (self.crop or self.alternating_flip),
             "teacher views are whole augmented faces: they cannot be combined with --crop or --alternating-flip"),
            (not self.alternating_flip or self.flip, "alternating flip needs --flip on"),
            (self.stop_at_test_accuracy is None or self.track_test,
             "stop-at-test-accuracy needs --track-test and a fraction in [0, 1]"),
            (self.pretrained in (None, "imagenet") or is_regular_file(self.pretrained),
             f"pretrained weights file not found: '{shown(self.pretrained, 200)}'" if self.pretrained
             else "pretrained weights from a local file: name the file"),
            (not (self.init and self.pretrained), "--init starts from a trained model: it replaces --pretrained"),
            (not self.init or is_regular_file(self.init), f"model to start from not found: '{shown(self.init, 200)}'"),
            (not self.pretrained or supports_pretrained(self.arch),
             f"'{self.arch}' trains from scratch: pretrained weights exist for vgg16, inception_v3 and resnet18"),
        ]
        for ok, message in rules:
            if not ok:
                raise ValueError(message)
        if self.init:
            try:
                starting_weights(self.init, self.arch, self.crop)
            except CheckpointError as exc:
                raise ValueError(str(exc)) from None


def options() -> dict[str, Option]:
    """Every option by field name, in the order of TrainConfig."""
    return {f.name: f.metadata["option"] for f in fields(TrainConfig)}


def value_type(name: str, config: type | None = None) -> type:
    """The type a value of option `name` of `config` (TrainConfig) has (int, float, str or bool), None aside."""
    annotation = {f.name: f.type for f in fields(config or TrainConfig)}[name]
    return {"int": int, "float": float, "bool": bool}.get(annotation.split(" | ")[0], str)


def sweepable() -> dict[str, type]:
    """The options a sweep may vary, with the type its typed values are read as."""
    return {name: value_type(name) for name, o in options().items() if o.sweep}


def check_option(f, value, config: type | None = None) -> str:
    """'' when `value` is allowed for field `f` of `config` (TrainConfig), else what is wrong, in the option's
    words."""
    o: Option = f.metadata["option"]
    what = f.name.replace("_", " ")
    if value is None:
        return "" if "None" in f.type else f"{what} must be set"
    if f.name == "batch_size" and value == "auto":
        return ""
    kind = value_type(f.name, config)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return f"{what} must be {'an integer' if kind is int else 'a number' if kind is float else kind.__name__}" + (
            " or 'auto'" if f.name == "batch_size" else "")
    allowed = o.allowed()
    if allowed is not None and value not in allowed:
        return f"{what} must be one of {', '.join(map(str, allowed))}" + (
            f" (unknown: '{shown(value)}')" if f.name == "arch" else "")
    low_ok = o.low is None or (value > o.low if o.low_open else value >= o.low)
    high_ok = o.high is None or (value < o.high if o.high_open else value <= o.high)
    if not (low_ok and high_ok):
        return f"{what} must be in {o.bounds_text()}, got {_num(value)}"
    return ""


# ----------------------------------------------------------------------------- the command line

def on_off(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected on/off, got '{text}'")


def _batch_size(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got '{text}'") from None


def get_args_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """`fer_core train`'s options, one flag per TrainConfig field (plus --resume), made from their Options."""
    p = parser or argparse.ArgumentParser(description="Train an emotion classifier on FER2013")
    special_types = {"batch_size": _batch_size, "tta_views": tta.views_arg, "track_test_views": tta.views_arg}
    add_options(p, TrainConfig, special_types)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    return p


def add_options(p: argparse.ArgumentParser, config: type, special_types: dict | None = None) -> None:
    """One flag per field of the dataclass `config` whose fields are `option`s (TrainConfig, tuning's StudyConfig)."""
    special_types = special_types or {}
    for f in fields(config):
        o: Option = f.metadata["option"]
        flag = "--" + f.name.replace("_", "-")
        kind = value_type(f.name, config)
        bounds = f" in {o.bounds_text()}" if o.low is not None or o.high is not None else ""
        default_text = "" if f.default is None or o.switch else " (default %(default)s)"
        help_text = (o.help + bounds + default_text).strip() or None
        if kind is bool and o.switch:
            p.add_argument(flag, action="store_true", help=help_text)
        elif kind is bool:
            p.add_argument(flag, type=on_off, default=f.default, metavar="on|off", help=help_text)
        else:
            allowed = o.allowed()
            p.add_argument(flag, type=special_types.get(f.name, kind), default=f.default, metavar=o.metavar,
                           choices=list(allowed) if allowed is not None else None, help=help_text)


def config_to_args(cfg: TrainConfig, names: set[str] | None = None) -> list[str]:
    """The `fer_core train` arguments that reproduce `cfg` (the inverse of config_from_args); only the options
    in `names` when given."""
    switches = {a.dest for a in get_args_parser()._actions if a.nargs == 0 and a.const is True}  # store_true flags
    args = []
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if value is None or (names is not None and f.name not in names):
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.name in switches:
            args += [flag] if value else []
        elif isinstance(value, bool):
            args += [flag, "on" if value else "off"]
        else:
            args += [flag, str(value)]
    return args


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})

"""The training configuration: `TrainConfig`, its validation, and its command line (parser and round trip).

The CLI, the job registry and the Train page build and check jobs with this module alone, without
importing the training loop.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..evaluation import tta
from ..models.registry import list_models, supports_pretrained
from ..paths import check_name, is_regular_file, shown
from .augment import AugmentConfig
from .balance import BALANCE_METHODS
from .mixing import MIX_METHODS

OPTIMIZERS = ("sgd", "adam", "nadam", "adamw")
SCHEDULERS = ("onecycle", "cosine", "plateau", "none")
MAX_TEACHER_VIEWS = 32  # each view of the 28,709 training faces holds 132 MB in memory
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "nadam": 1e-3, "adamw": 1e-3}


@dataclass
class TrainConfig:
    arch: str = "fer_vgg_small"
    data: str | None = None
    out: str = "runs"
    name: str | None = None
    epochs: int = 30
    batch_size: int | str = 128          # or "auto": the largest that fits the device
    optimizer: str = "sgd"
    lr: float | None = None              # None: DEFAULT_LR[optimizer] (the peak, for one-cycle)
    weight_decay: float = 5e-4
    scheduler: str = "onecycle"
    patience: int = 0                    # early stopping after this many epochs without val gain; 0 = off
    label_smoothing: float = 0.1
    ema: float = 0.0                     # decay of a moving average of the weights (0: off); it is evaluated and saved
    teacher: str | None = None           # distillation: a checkpoint or saved ensemble whose probabilities are learnt
    distill_weight: float = 0.7          # share of the teacher's soft targets in the loss (with --teacher)
    teacher_views: int = 0               # consistent teaching: the teacher labels this many augmented views per image
    teacher_mirror: bool = False         # ... each view averaged with its mirror; the student trains on either
    balance: str = "none"
    flip: bool = True
    alternating_flip: bool = False       # mirror each image every other epoch instead of at random (airbench)
    mix: str = "none"                    # "mixup" or "cutmix": blend or patch pairs of images, and their targets
    mix_alpha: float = 1.0               # Beta(alpha, alpha) draws the share of each image
    rotate: float = 10.0
    zoom: float = 0.1
    shift: float = 0.1
    erase: float = 0.0
    crop: int | None = None              # train on random crop x crop windows; the network takes 48x48 faces
    exclude: str | None = None           # "audit" (what the health audit flags) or a file of image ids
    pretrained: str | None = None        # "imagenet" or a state_dict path (torchvision backbones)
    device: str = "auto"
    amp: bool = True                     # bf16 autocast where the device runs bf16 natively (precision.py)
    compile: bool = False
    seed: int = 0
    tta_views: int = tta.DEFAULT_VIEWS   # for the final evaluation
    limit: int | None = None             # use a fixed random N images of each split (smoke runs)
    epoch_size: int | None = None        # train on a fresh random N images per epoch (short CPU budgets)
    track_test: bool = False             # also log PrivateTest accuracy per epoch (time-to-accuracy; never selects)
    track_test_views: int = 2            # with track_test: PrivateTest is also logged with this many TTA views (1: off)
    stop_at_test_accuracy: float | None = None  # benchmarks: end once PrivateTest reaches it (needs track_test)

    def augment(self) -> AugmentConfig:
        return AugmentConfig(self.flip, self.rotate, self.zoom, self.shift, self.erase, self.crop)

    def validate(self) -> None:
        """Raise ValueError naming the first bad option (the dashboard form shows it too)."""
        if self.arch not in list_models():
            raise ValueError(f"unknown architecture '{self.arch}': choose one of {', '.join(list_models())}")
        if self.name is not None:
            check_name(self.name, "run name")
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.scheduler in SCHEDULERS, f"scheduler must be one of {', '.join(SCHEDULERS)}"),
            (self.balance in BALANCE_METHODS, f"balance must be one of {', '.join(BALANCE_METHODS)}"),
            (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device must be auto, cpu or cuda"),
            (self.epochs >= 1, "epochs must be at least 1"),
            (self.batch_size == "auto" or (isinstance(self.batch_size, int) and self.batch_size >= 2),
             "batch size must be 'auto' or an integer of at least 2"),
            (self.lr is None or 0 < self.lr < 10, "learning rate must be in (0, 10)"),
            (self.weight_decay >= 0, "weight decay must be >= 0"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.ema < 1, "EMA decay must be in [0, 1), e.g. 0.999 (0: off)"),
            (not self.teacher or is_regular_file(self.teacher), f"teacher model not found: {shown(self.teacher, 200)}"),
            (0 <= self.distill_weight <= 1, "distillation weight must be in [0, 1]"),
            (0 <= self.teacher_views <= MAX_TEACHER_VIEWS, f"teacher views must be 0..{MAX_TEACHER_VIEWS}"),
            (not self.teacher_views or self.teacher, "teacher views need --teacher"),
            (not self.teacher_mirror or self.teacher_views, "--teacher-mirror needs --teacher-views (the clean "
             "teaching already labels each face's mirror)"),
            (not self.teacher_mirror or self.flip, "--teacher-mirror trains on mirrored faces: it needs --flip on"),
            (not self.teacher_views or not (self.crop or self.alternating_flip),
             "teacher views are whole augmented faces: they cannot be combined with --crop or --alternating-flip"),
            (self.patience >= 0, "patience must be >= 0"),
            (0 <= self.rotate <= 180, "rotation must be 0..180 degrees"),
            (0 <= self.zoom < 1, "zoom must be in [0, 1)"),
            (0 <= self.shift < 0.5, "shift must be in [0, 0.5)"),
            (0 <= self.erase <= 1, "erase probability must be in [0, 1]"),
            (self.crop is None or 16 <= self.crop <= 47, "crop must be a side from 16 to 47 pixels"),
            (self.mix in MIX_METHODS, f"mix must be one of {', '.join(MIX_METHODS)}"),
            (self.mix_alpha > 0, "mix alpha must be > 0"),
            (not self.alternating_flip or self.flip, "alternating flip needs --flip on"),
            (1 <= self.tta_views <= tta.MAX_VIEWS, f"TTA views must be 1..{tta.MAX_VIEWS}"),
            (1 <= self.track_test_views <= tta.MAX_VIEWS, f"track-test TTA views must be 1..{tta.MAX_VIEWS}"),
            (self.limit is None or self.limit >= 8, "limit must be at least 8 images"),
            (self.epoch_size is None or self.epoch_size >= 8, "epoch size must be at least 8 images"),
            (self.stop_at_test_accuracy is None or (self.track_test and 0 <= self.stop_at_test_accuracy <= 1),
             "stop-at-test-accuracy needs --track-test and a fraction in [0, 1]"),
            (self.pretrained in (None, "imagenet") or is_regular_file(self.pretrained),
             f"pretrained weights file not found: '{shown(self.pretrained, 200)}'" if self.pretrained
             else "pretrained weights from a local file: name the file"),
            (not self.pretrained or supports_pretrained(self.arch),
             f"'{self.arch}' trains from scratch: pretrained weights exist for vgg16, inception_v3 and resnet18"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


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
    p = parser or argparse.ArgumentParser(description="Train an emotion classifier on FER2013")
    d = TrainConfig()
    p.add_argument("--arch", default=d.arch, choices=list(list_models()), help="architecture (default %(default)s)")
    p.add_argument("--data", help="dataset: Kaggle zip, its folder, or fer2013.csv (default $FER_DATA, then data/)")
    p.add_argument("--out", default=d.out, help="folder for run folders (default %(default)s)")
    p.add_argument("--name", help="run folder name (default: timestamp-arch)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=_batch_size, default=d.batch_size, help="an integer or 'auto'")
    p.add_argument("--optimizer", default=d.optimizer, choices=OPTIMIZERS)
    p.add_argument("--lr", type=float, help="learning rate (peak for one-cycle); default per optimizer")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--scheduler", default=d.scheduler, choices=SCHEDULERS)
    p.add_argument("--patience", type=int, default=d.patience, help="early stopping patience in epochs (0: off)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--teacher", metavar="MODEL", help="distillation: learn the probabilities of this checkpoint "
                   "or saved ensemble (models/<name>.json) on the training images")
    p.add_argument("--distill-weight", type=float, default=d.distill_weight,
                   help="share of the teacher's probabilities in the loss (default %(default)s)")
    p.add_argument("--teacher-views", type=int, default=d.teacher_views, metavar="K",
                   help="consistent teaching: before training, the teacher labels K augmented views of every training "
                        "image and the student trains on those views (0: the teacher labels the clean images and "
                        "their mirrors; default %(default)s)")
    p.add_argument("--teacher-mirror", action="store_true",
                   help="with --teacher-views: the teacher's answer for each view is averaged with its answer for "
                        "the view's mirror, and the student trains on each view or its mirror (labelling takes twice as long)")
    p.add_argument("--ema", type=float, default=d.ema, metavar="DECAY",
                   help="evaluate and save a moving average of the weights with this decay, e.g. 0.999 (0: off)")
    p.add_argument("--balance", default=d.balance, choices=BALANCE_METHODS, help="class balancing")
    p.add_argument("--flip", type=on_off, default=d.flip, metavar="on|off")
    p.add_argument("--alternating-flip", action="store_true",
                   help="mirror each image every other epoch instead of at random (airbench)")
    p.add_argument("--mix", default=d.mix, choices=MIX_METHODS, help="mixup or cutmix of image pairs (default none)")
    p.add_argument("--mix-alpha", type=float, default=d.mix_alpha, help="Beta(alpha, alpha) of the mix (default 1.0)")
    p.add_argument("--rotate", type=float, default=d.rotate, help="max degrees")
    p.add_argument("--zoom", type=float, default=d.zoom, help="max zoom fraction")
    p.add_argument("--shift", type=float, default=d.shift, help="max shift, fraction of the side")
    p.add_argument("--erase", type=float, default=d.erase, help="random-erasing probability")
    p.add_argument("--crop", type=int, metavar="SIDE", help="train on random SIDE x SIDE crops (40 or 44 in the "
                   "FER2013 literature); the network then takes whole faces and looks at their centre window")
    p.add_argument("--exclude", help="'audit' (leave out what the data-health audit flags) or a file of image ids")
    p.add_argument("--pretrained", help="'imagenet' or a local state_dict file (vgg16, inception_v3, resnet18)")
    p.add_argument("--device", default=d.device, help="auto, cpu or cuda")
    p.add_argument("--amp", type=on_off, default=d.amp, metavar="on|off",
                   help="bf16 autocast and channels_last where the device runs bf16 natively (CUDA, or a CPU with "
                        "AVX512-BF16/AMX); off: plain fp32 (default on)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--tta-views", type=tta.views_arg, default=d.tta_views, help="views for the final TTA evaluation")
    p.add_argument("--limit", type=int, help="use a fixed random N images of each split (quick checks)")
    p.add_argument("--track-test", action="store_true",
                   help="log PrivateTest accuracy every epoch (for time-to-accuracy; the best epoch is still chosen on val)")
    p.add_argument("--track-test-views", type=tta.views_arg, default=d.track_test_views,
                   help="with --track-test: also log PrivateTest accuracy with this many TTA views (default 2: the "
                        "image and its mirror; 1: plain only)")
    p.add_argument("--stop-at-test-accuracy", type=float, metavar="FRACTION",
                   help="with --track-test: stop once PrivateTest accuracy reaches this (time-to-accuracy benchmarks)")
    p.add_argument("--epoch-size", type=int, help="train on a fresh random N training images per epoch "
                   "(short budgets; val and test stay whole)")
    return p


def config_to_args(cfg: TrainConfig) -> list[str]:
    """The `fer_core train` arguments that reproduce `cfg` (the inverse of config_from_args)."""
    switches = {a.dest for a in get_args_parser()._actions if a.nargs == 0 and a.const is True}  # store_true flags
    args = []
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if value is None:
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

"""What the command modules share: one definition of each flag several commands take, the progress bar,
and the parser whose errors are one line."""
from __future__ import annotations

import argparse
import sys

DATA_HELP = "dataset path (default $FER_DATA, then data/)"
ENGINE_HELP = ("what runs the network: torch, onnxruntime, int8, or auto (default, or $FER_ENGINE; evaluate on FER2013 "
               "defaults to torch, as the model cards measure): auto is the fastest on this machine that agrees with "
               "PyTorch fp32, measured once per model")


def data_option(parser: argparse.ArgumentParser, help: str = DATA_HELP) -> None:
    parser.add_argument("--data", help=help)


def json_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    parser.add_argument("--json", action="store_true", help=help)


def tta_views_option(parser: argparse.ArgumentParser) -> None:
    from ..evaluation.tta import DEFAULT_VIEWS, views_arg
    parser.add_argument("--tta-views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")


def engine_option(parser: argparse.ArgumentParser) -> None:
    from ..inference.engines import ENGINE_CHOICES
    parser.add_argument("--engine", choices=ENGINE_CHOICES, default=None, help=ENGINE_HELP)


def models_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models-dir", help="default $FER_MODELS_DIR, else models/ in the project")


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy as a fraction in [0, 1] (e.g. 0.70), got '{text}'")
    return value


def progress_bar(desc: str):
    """A `progress(done, total)` callback drawing a tqdm bar on stderr (a line every 10 s when not a terminal)."""
    from tqdm import tqdm
    bar = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit="view", unit_scale=True, file=sys.stderr,
                       mininterval=0.5 if sys.stderr.isatty() else 10)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return report


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line that points to --help, instead of argparse's whole usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")

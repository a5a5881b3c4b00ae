"""`python -m fer_core <command>`: one module per command group, each with its parser beside its commands
(as torchvision's references keep `get_args_parser` beside `main`); the flags several commands take are
defined once in `common`.

Errors are one line on stderr and a non-zero exit (1); usage errors exit 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys

from ..errors import FERError
from ..paths import BadNameError, os_reason, shown
from . import bench, data, evaluation, export, predict, runs, shipping, training
from .common import OneLineErrors

GROUPS = (data, training, evaluation, shipping, runs, bench, predict, export)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m fer_core", description="Facial emotion recognition on FER2013")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(commands)
    return parser


def command_parser(parser: argparse.ArgumentParser, words: list[str]) -> argparse.ArgumentParser:
    """The parser of the (sub)command that the leading `words` name: `train`, `data audit`, `bench live`..."""
    for word in words:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[word]
    return parser


MAY_BE_EMPTY = {"notes"}  # free text; every other option given as "" is refused


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extras = parser.parse_known_args(argv)
    if extras:  # a typo: point to the help of the command it was given to, not the top-level one
        command_parser(parser, [w for w in argv if not w.startswith("-")]).error(
            f"unrecognized arguments: {' '.join(extras)}")
    empty = [k for k, v in vars(args).items()
             if (v == "" or (isinstance(v, list) and "" in v)) and k not in MAY_BE_EMPTY]
    if empty:  # an empty value is a mistake (an unset shell variable), never "use the default"
        flag = f"--{empty[0].replace('_', '-')}" if f"--{empty[0].replace('_', '-')}" in argv or any(
            a.startswith(f"--{empty[0].replace('_', '-')}=") for a in argv) else empty[0].upper()
        print(f"error: {flag} was given an empty value", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except BadNameError as exc:  # a bad name is a bad value, as argparse's own: exit 2 from every command
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FERError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`... --json | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # a file the product did not expect to fail: still one line, naming it
        where = f" ({shown(exc.filename, 200)})" if getattr(exc, "filename", None) else ""
        print(f"error: {os_reason(exc)}{where}", file=sys.stderr)
        return 1
    except sqlite3.Error as exc:
        print(f"error: the run registry cannot be used: {shown(exc, 200)} (is the runs folder full or read-only?)",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

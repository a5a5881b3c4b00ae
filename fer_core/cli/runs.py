"""`runs`: the run registry (list, cancel, resume, delete) and its worker."""
from __future__ import annotations

import json
import sys

from .common import json_option


def cmd_runs_list(args) -> int:
    from ..runs.registry import Registry
    registry = Registry(args.runs_dir)
    runs = registry.list()
    if registry.not_saved:
        print(f"warning: {registry.not_saved}; shown as the run folders say", file=sys.stderr)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {registry.runs_dir}")
        return 0
    pct = lambda v: "-" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    print(f"{'id':40} {'arch':14} {'state':12} {'epochs':>7} {'best val':>9} {'test':>8} {'test TTA':>9}")
    for r in runs:
        print(f"{r.id:40} {r.arch:14} {r.state:12} {f'{r.epochs_done}/{r.epochs}':>7} {pct(r.best_val_accuracy):>9} "
              f"{pct(r.test_accuracy):>8} {pct(r.test_accuracy_tta):>9}")
    return 0


def cmd_runs_action(args) -> int:
    from ..runs.registry import Registry
    getattr(Registry(args.runs_dir), args.action)(args.run_id)
    print(f"{args.action}: {args.run_id}")
    return 0


def cmd_runs_worker(args) -> int:
    from ..runs.worker import run_worker
    run_worker(args.runs_dir, args.slot)
    return 0


def add_parsers(commands) -> None:
    runs = commands.add_parser("runs", help="the run registry: list, cancel, resume, delete")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    runs_list = runs_commands.add_parser("list", help="id, architecture, state, epochs, best val and test accuracy")
    json_option(runs_list)
    runs_list.set_defaults(func=cmd_runs_list)
    for action, text in (("cancel", "stop a queued or running job (its checkpoint is kept)"),
                         ("resume", "continue an interrupted, cancelled or failed run"),
                         ("delete", "remove a run and its files")):
        sub = runs_commands.add_parser(action, help=text)
        sub.add_argument("run_id")
        sub.set_defaults(func=cmd_runs_action, action=action)
    worker = runs_commands.add_parser("worker", help="(internal) start queued jobs of one device slot")
    worker.add_argument("--slot", default="cpu", choices=("cpu", "cuda"))
    worker.set_defaults(func=cmd_runs_worker)
    for sub in (runs_list, worker, *[runs_commands.choices[a] for a in ("cancel", "resume", "delete")]):
        sub.add_argument("--runs-dir", help="default $FER_RUNS_DIR, else runs/ in the project")

"""Dataset commands: `data report` (counts per split and class) and `data audit` (data health)."""
from __future__ import annotations

import json

from ..labels import EMOTIONS
from ..paths import write_text_atomic
from .common import data_option, json_option


def cmd_data_report(args) -> int:
    from ..data.dataset import dataset_report
    from ..data.fer2013 import load_dataset
    report = dataset_report(load_dataset(args.data))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['source']} ({report['format']}, {report['total']:,} images)")
    if report["val_from_train"]:
        print("val was carved out of train (stratified, deterministic): the source has no PublicTest split")
    print(f"{'':10}" + "".join(f"{name:>16}" for name in report["splits"]))
    for emotion in EMOTIONS:
        cells = (f"{s['counts'][emotion]:>8,} ({s['percent'][emotion]:4.1f}%)" for s in report["splits"].values())
        print(f"{emotion:10}" + "".join(f"{c:>16}" for c in cells))
    print(f"{'total':10}" + "".join(f"{s['total']:>16,}" for s in report["splits"].values()))
    print(f"{'imbalance':10}" + "".join(f"{s['imbalance_ratio']:>15}x" for s in report["splits"].values()))
    if report["problems"]:
        print(f"{len(report['problems'])} images or rows were skipped or resized (see warnings above)")
    return 0


def cmd_data_audit(args) -> int:
    from ..data.audit import audit_dataset
    from ..data.fer2013 import load_dataset
    from ..paths import output_file
    if args.out:
        output_file(args.out, "--out file")
    result = audit_dataset(load_dataset(args.data))
    if args.out:
        write_text_atomic(args.out, result.exclude_text())
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    s = result.summary()
    print(f"{s['images']:,} images audited in {s['seconds']} s")
    for kind in ("exact", "near"):
        k = s[kind]
        print(f"{kind + ' duplicates':17} {k['groups']:>6,} groups ({k['images']:,} images): "
              f"{k['within_split']:,} within a split, {k['cross_split']:,} across splits, "
              f"{k['label_conflicts']:,} with different labels")
    print(f"{'blank images':17} {s['blank']:>6,}")
    print(f"{s['flagged']:,} images flagged; {s['excluded']:,} on the training exclusion list"
          + (f", written to {args.out} (use: train --exclude {args.out})" if args.out else " (write it with --out FILE)"))
    return 0


def add_parsers(commands) -> None:
    data = commands.add_parser("data", help="dataset commands")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    report = data_commands.add_parser("report", help="per-split, per-class counts and the imbalance ratio")
    data_option(report)
    json_option(report)
    report.set_defaults(func=cmd_data_report)
    audit = data_commands.add_parser("audit", help="data health: duplicates (also across splits), label conflicts, blanks")
    data_option(audit)
    audit.add_argument("--out", help="write the training exclusion list (one image id per line) to this file")
    json_option(audit)
    audit.set_defaults(func=cmd_data_audit)

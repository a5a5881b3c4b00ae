"""Models into models/: `ship` a run, `rebalance` a shipped model, save an `ensemble`; the `results-table` made
from the cards."""
from __future__ import annotations

import json
import sys

from .common import progress_bar, data_option, json_option, tta_views_option, models_dir_option


def cmd_ship(args) -> int:
    from ..cards.model_cards import ship_card_only, ship_run
    from ..paths import models_dir
    measuring = progress_bar(f"measuring models/{args.name} on PublicTest and PrivateTest, plain and TTA")
    if args.card_only:
        card = ship_card_only(args.run_dir, args.name, models_dir(), notes=args.notes, data=args.data,
                              replace=args.replace, progress=measuring)
        print(f"wrote the model card {card} for {args.run_dir} (checkpoint not shipped)")
        return 0
    card = ship_run(args.run_dir, args.name, models_dir(), notes=args.notes, data=args.data, replace=args.replace,
                    progress=measuring)
    print(f"shipped {args.run_dir} as {card.with_suffix('.pt')} with its card {card}")
    return 0


def cmd_rebalance(args) -> int:
    from ..cards.rebalanced import ship_rebalanced
    from ..models.card import ModelCard
    from ..paths import models_dir
    measuring = progress_bar(f"measuring models/{args.name} on PublicTest and PrivateTest, plain and TTA")
    card = ship_rebalanced(args.model, args.name, models_dir(), tau=args.tau, data=args.data, replace=args.replace,
                           progress=measuring)
    shipped = ModelCard.read(card).fields
    adjustment, test = shipped["logit_adjustment"], shipped["metrics"]["test"]["tta"]
    chosen = (f"chosen on PublicTest from {adjustment['public_test_accuracy']}" if "public_test_accuracy" in adjustment
              else "as given")
    print(f"shipped {args.model} rebalanced (tau {adjustment['tau']}, {chosen}) as {card.with_suffix('.pt')}; "
          f"PrivateTest with TTA {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")
    return 0


def cmd_ensemble(args) -> int:
    """Evaluate the averaged probabilities of checkpoints on val and test; --name saves it to models/."""
    from ..cards.ensembles import check_ensemble_name, ensemble_metrics, save_ensemble
    from ..cards.model_cards import ensemble_member, measure_card
    from ..data.fer2013 import load_dataset
    from ..models.ensemble import MAX_MEMBERS
    from ..paths import models_dir
    if not 2 <= len(args.checkpoints) <= MAX_MEMBERS:
        print(f"error: an ensemble needs 2 to {MAX_MEMBERS} checkpoints", file=sys.stderr)
        return 2
    if args.name is not None:  # refused before minutes of evaluation, not after
        check_ensemble_name(args.name, args.models_dir or models_dir())
    dataset = load_dataset(args.data)
    metrics, _ = ensemble_metrics(args.checkpoints, dataset, args.tta_views)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        for split, name in (("val", "PublicTest"), ("test", "PrivateTest")):
            plain, tta = metrics[split]["plain"], metrics[split]["tta"]
            print(f"{name}: accuracy {plain['accuracy']:.4f} (TTA {tta['accuracy']:.4f}), "
                  f"macro-F1 {plain['macro_f1']:.4f} (TTA {tta['macro_f1']:.4f})")
    if args.name is not None:
        members = [ensemble_member(c) for c in args.checkpoints]
        measured = {}
        path = save_ensemble(args.name, members, metrics, args.tta_views, args.models_dir or models_dir(),
                             finish=lambda card: measured.update(measure_card(card, dataset)))
        shipped = measured["metrics"]["test"]  # the card describes the float16 copies
        print(f"saved the ensemble as {path}; its float16 members score PrivateTest {shipped['plain']['accuracy']:.4f} "
              f"(TTA {shipped['tta']['accuracy']:.4f})", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_results_table(args) -> int:
    from ..cards.model_cards import load_cards
    from ..cards.results_table import results_table, update_tables
    from ..paths import PROJECT_ROOT
    if args.write:
        changed = update_tables(PROJECT_ROOT)
        print(f"updated {' and '.join(changed)}" if changed else "README.md and docs/results.md already up to date")
    else:
        print(results_table(load_cards()))
    return 0


def add_parsers(commands) -> None:
    ship = commands.add_parser("ship", help="export a finished run to models/ (half precision) with its model card")
    ship.add_argument("run_dir", help="a finished run folder")
    ship.add_argument("--name", required=True,
                      help="models/<name>.pt and models/<name>.json ('default' is the model every page and command uses)")
    ship.add_argument("--replace", action="store_true",
                      help="replace models/<name> if it exists (its old files are kept in models/.replaced/)")
    ship.add_argument("--notes", default="", help="free text for the card (how and where it was trained)")
    ship.add_argument("--card-only", action="store_true",
                      help="write only models/<name>.json and its per-image predictions (a reference run): "
                           "measured on the run's float32 best.pt, which is not shipped")
    data_option(ship, "dataset to measure the card's metrics on (default: the run's)")
    ship.set_defaults(func=cmd_ship)

    rebalance = commands.add_parser(
        "rebalance", help="a shipped model's decisions shifted towards rare emotions (disgust, fear) for photos where "
                          "every emotion is as likely: logit adjustment, its strength chosen on PublicTest")
    rebalance.add_argument("model", help="a shipped model's name (models/<model>.pt)")
    rebalance.add_argument("--name", required=True, help="the new model's name (models/<name>.pt and .json)")
    rebalance.add_argument("--tau", type=float, default=None,
                           help="strength: 0 changes nothing, 1 treats every emotion as equally likely "
                                "(default: the best on PublicTest of 0, 0.25, 0.5, 0.75, 1)")
    rebalance.add_argument("--replace", action="store_true",
                           help="replace models/<name> if it exists (its old files are kept in models/.replaced/)")
    data_option(rebalance, "the dataset: its Training counts give the prior; measured on its test splits")
    rebalance.set_defaults(func=cmd_rebalance)

    ensemble = commands.add_parser("ensemble", help="evaluate checkpoints' averaged probabilities; --name saves it")
    ensemble.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="two or more .pt files")
    data_option(ensemble)
    tta_views_option(ensemble)
    ensemble.add_argument("--name", help="save as models/<name>.json (members copied in float16)")
    models_dir_option(ensemble)
    json_option(ensemble)
    ensemble.set_defaults(func=cmd_ensemble)

    table = commands.add_parser("results-table", help="the results table (docs/results.md) and the README's model zoo, "
                                "made from models/*.json")
    table.add_argument("--write", action="store_true", help="rewrite the tables in docs/results.md and README.md")
    table.set_defaults(func=cmd_results_table)

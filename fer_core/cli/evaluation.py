"""`evaluate` (FER2013, FER+ labels, face folders, whole photos) and `calibrate` (temperatures of the cards)."""
from __future__ import annotations

import json
import os
import sys

from ..errors import FERError
from ..labels import EMOTIONS
from ..paths import default_checkpoint
from .common import progress_bar, data_option, json_option, tta_views_option, engine_option, models_dir_option


def cmd_evaluate(args) -> int:
    from ..inference.scoring import score_model
    from ..models.devices import resolve_device
    args.checkpoint = args.checkpoint or str(default_checkpoint())
    if args.checkpoint == str(default_checkpoint()) and not default_checkpoint().exists():
        raise FERError(f"no default model at {default_checkpoint()}: pass --checkpoint, or train one and "
                       f"`python -m fer_core ship RUN_DIR --name default`")
    views = args.tta_views if args.tta else 1
    if args.stress and not args.photos:
        raise FERError("--stress goes with --photos DIR (whole photos)")
    if args.record and not (args.photos or args.labels == "ferplus"):
        raise FERError("--record keeps real-photo figures (--photos DIR) or the FER+ benchmark (--labels ferplus) "
                       "in the model's card")
    if args.photos:
        return _evaluate_photos(args, views)
    card = _card_to_record(args.checkpoint) if args.record else None  # before the work
    # on FER2013 the figure is the point: PyTorch, as the model cards measure, unless an engine is asked for
    engine = args.engine or (None if args.faces else os.environ.get("FER_ENGINE") or "torch")
    report = score_model(args.checkpoint, resolve_device(args.device), data=args.data, split=args.split,
                         faces=args.faces, whole_image=args.whole_image, views=views, amp=args.amp,
                         engine=engine, labels=args.labels, ferplus=args.ferplus)
    if args.record:
        from ..cards.model_cards import record_ferplus
        record_ferplus(card, args.split, report)
        print(f"recorded in {card}", file=sys.stderr)
    scored_on = str(args.faces) if args.faces else args.split
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.checkpoint} on {scored_on} ({report['n']:,} images, TTA {'%d views' % views if views > 1 else 'off'}, "
          f"{report['engine']})")
    skipped, ignored = report.get("skipped") or [], report.get("ignored_folders") or []
    if skipped or ignored:
        no_face = sum(s["reason"] == "no face found" for s in skipped)
        print(f"skipped {len(skipped)} images ({no_face} without a face found, {len(skipped) - no_face} "
              f"unreadable; --json lists them)" + (f"; ignored subfolders that name no emotion: "
                                                   f"{', '.join(ignored)}" if ignored else ""))
    print(f"accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   weighted-F1 {report['weighted_f1']:.4f}")
    card_line = _card_figure(args.checkpoint, args.split, views) if not args.faces and args.labels == "fer2013" else ""
    if card_line:
        print(card_line)
    if "clean" in report:
        print(f"clean PrivateTest: accuracy {report['clean']['accuracy']:.4f} on {report['clean']['n']:,} images "
              f"({report['clean']['removed']} with a copy in Training removed)")
    print(f"{'':10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, m in report["per_class"].items():
        print(f"{name:10}{m['precision']:10.3f}{m['recall']:10.3f}{m['f1']:10.3f}{m['support']:10d}")
    print("confusion matrix (rows true, columns predicted): " + " ".join(e[:3] for e in EMOTIONS))
    for name, row in zip(EMOTIONS, report["confusion_matrix"]):
        print(f"{name:10}" + "".join(f"{v:6d}" for v in row))
    return 0


def _card_figure(checkpoint: str, split: str, views: int) -> str:
    """What the model's card says for this split and TTA setting, to set beside the figure just measured."""
    from ..models.card import ModelCard
    from ..models.loading import card_of
    try:
        card = ModelCard.read(card_of(checkpoint))
    except FERError:
        return ""
    accuracy = card.accuracy(split, tta=views > 1)
    card_views = int(card.number("metrics", split, "tta" if views > 1 else "plain", "tta_views") or 1)
    if accuracy is None:
        return ""
    same = card_views == views
    return (f"its model card says {accuracy:.4f} ({'the same setting' if same else f'with {card_views} TTA views'}, "
            f"{card.fields.get('metrics_precision') or 'PyTorch'}); another engine (--engine int8) or precision "
            f"(--amp off) moves the figure by a few tenths")


def _card_to_record(checkpoint: str):
    """The model card `evaluate --photos --record` writes to: a card of ours, inside the models folder."""
    from ..models.card import ModelCard
    from ..models.loading import card_of
    from ..paths import models_dir, path_inside
    card = card_of(checkpoint)
    if not card.is_file():
        raise FERError(f"--record keeps the figures in the model's card, and {card} does not exist: record "
                       f"shipped models (models/<name>.pt or an ensemble's .json)")
    if card.resolve() != path_inside(models_dir(), card.name, "model card").resolve():
        raise FERError(f"--record writes only into the model cards of the models folder ({models_dir()}); "
                       f"{card} is elsewhere")
    if not ModelCard.read(card).ours:
        raise FERError(f"{card} is not a model card of ours: --record writes only into those")
    return card


def _evaluate_photos(args, views: int) -> int:
    """evaluate --photos: the whole pipeline (find, frame, classify) on labelled photos."""
    from ..inference.photos import load_photo_set, score_photos
    from ..inference.recognizer import EmotionRecognizer
    photos = load_photo_set(args.photos)  # before the model loads: a wrong folder is one line at once
    card = _card_to_record(args.checkpoint) if args.record else None  # before minutes of work
    rec = EmotionRecognizer.load(args.checkpoint, engine=args.engine, batch=views)
    report = score_photos(rec, photos, views, stress=args.stress,
                          progress=None if args.json else progress_bar(f"photos of {photos.name}"))
    report.update(checkpoint=str(args.checkpoint), engine=rec.engine)
    if args.record:
        from ..cards.model_cards import record_real_photos
        from ..bench.timing import machine_line
        record_real_photos(card, report, f"{machine_line()}; {rec.engine}")
        print(f"recorded in {card}", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.checkpoint} on {report['n']} photos of {photos.name}{' (stress copy)' if args.stress else ''}, "
          f"TTA {'%d views' % views if views > 1 else 'off'}, {rec.engine}, detector: {report['detector']}")
    print(f"faces found {report['faces_found']:.1%}   right {report['accuracy']:.1%} of all photos "
          f"({report['accuracy_with_face']:.1%} of those with a face)   macro-F1 {report['macro_f1']:.3f}   "
          f"{report['ms_per_photo']:.1f} ms per photo (median)")
    print("per class: " + "  ".join(f"{e} {v:.0%}" for e, v in report["per_class"].items() if v is not None))
    for kind, r in (report.get("by_stress") or {}).items():
        print(f"  {kind:8} faces found {r['faces_found']:.0%}, right {r['accuracy']:.0%}")
    print("confusion matrix (rows true, columns predicted): " + " ".join(c[:3] for c in report["columns"]))
    for name, row in zip(EMOTIONS, report["confusion_matrix"]):
        print(f"{name:10}" + "".join(f"{v:6d}" for v in row))
    if report["unreadable"]:
        print(f"{len(report['unreadable'])} photos unreadable (counted wrong; --json lists them)")
    return 0


def cmd_calibrate(args) -> int:
    """Temperature scaling for every card with stored predictions: fitted on PublicTest, ECE before and after."""
    from ..cards.model_cards import load_cards, update_card
    from ..cards.predictions import calibration_of, load_predictions, predictions_path
    from ..paths import models_dir
    print(f"{'model':32}{'mode':>6}{'T':>8}{'ECE PublicTest':>22}{'ECE PrivateTest':>22}")
    for card in load_cards(args.models_dir or models_dir()):
        path = predictions_path(card["card_path"])
        if not path.is_file() or card.get("damage"):
            continue
        stored = load_predictions(path)
        if stored is None:
            print(f"{card['name']:32}skipped: {path.name} is not a complete predictions file", file=sys.stderr)
            continue
        calibration = calibration_of(stored.probs, stored.labels)
        for mode, c in calibration.items():
            print(f"{card['name']:32}{mode:>6}{c['temperature']:8.3f}"
                  f"{100 * c['val_ece']:11.2f}% -> {100 * c['val_ece_calibrated']:5.2f}%"
                  f"{100 * c['test_ece']:11.2f}% -> {100 * c['test_ece_calibrated']:5.2f}%")
        if args.write:
            update_card(card["card_path"], calibration=calibration)
    return 0


def add_parsers(commands) -> None:
    from ..training.config import on_off
    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on val, test or your own labelled faces")
    evaluate.add_argument("--checkpoint",
                          help="a checkpoint (.pt) or a saved ensemble (models/<name>.json); default: the shipped model")
    data_option(evaluate)
    evaluate.add_argument("--split", default="test", choices=("val", "test"), help="val = PublicTest, test = PrivateTest")
    evaluate.add_argument("--faces", metavar="DIR",
                          help="instead of FER2013: your own labelled faces, one subfolder per emotion "
                               "(DIR/happy/*.jpg, ...); each image's largest face is scored")
    evaluate.add_argument("--whole-image", action="store_true",
                          help="with --faces: every image is already a face crop (no face detection)")
    evaluate.add_argument("--photos", metavar="DIR|CSV",
                          help="whole photos, as users give them: DIR/<emotion>/*.jpg or a CSV of path,label; the "
                               "pipeline finds, frames and labels each photo's largest face (no face = wrong)")
    evaluate.add_argument("--stress", action="store_true",
                          help="with --photos: a stress copy made in memory (tight crops, small faces, tilts, "
                               "grayscale, dark, JPEG quality 20; one per photo, the same every run)")
    evaluate.add_argument("--record", action="store_true",
                          help="with --photos or --labels ferplus: keep the figures in the model's card (Compare's "
                               "'On real photos', the README's zoo)")
    evaluate.add_argument("--labels", choices=("fer2013", "ferplus"), default="fer2013",
                          help="FER2013's own labels, or the FER+ crowd's majority (the FER+ benchmark; images "
                               "without a majority left out)")
    evaluate.add_argument("--ferplus", metavar="FILE",
                          help="FER+'s fer2013new.csv for --labels ferplus (default $FER_PLUS, then data/)")
    evaluate.add_argument("--tta", action="store_true", help="test-time augmentation")
    tta_views_option(evaluate)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--amp", type=on_off, default=True, metavar="on|off",
                          help="bf16 where the device runs it natively and it is faster (default on); off: fp32")
    engine_option(evaluate)
    json_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    calibrate = commands.add_parser("calibrate", help="fit each model card's temperature on PublicTest (from its "
                                    "stored predictions) and report the expected calibration error before and after")
    calibrate.add_argument("--write", action="store_true", help="store the temperatures in the cards")
    models_dir_option(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)

"""`python -m fer_core <command>`: data report, train, evaluate, bench.

Errors are one line on stderr and a non-zero exit (1); usage errors exit 2.
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sqlite3
import sys

from .errors import FERError
from .labels import EMOTIONS
from .paths import BadNameError, default_checkpoint, os_reason, shown, write_text_atomic


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected an accuracy as a fraction in [0, 1] (e.g. 0.70), got '{text}'")
    return value


def cmd_data_report(args) -> int:
    from .data.dataset import dataset_report
    from .data.fer2013 import load_dataset
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
    from .data.audit import audit_dataset
    from .data.fer2013 import load_dataset
    from .paths import output_file
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


def cmd_train(args) -> int:
    from .training.config import config_from_args
    from .training.train import main
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
    from .paths import read_text_file
    from .runs.registry import Registry
    from .training.config import config_from_args
    from .tuning.space import SpaceError, parse_space
    from .tuning.study import default_storage, open_study, run_study, study_summary
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


def cmd_evaluate(args) -> int:
    from .inference.scoring import score_model
    from .models.devices import resolve_device
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
        from .cards.model_cards import record_ferplus
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


def _card_figure(checkpoint: str, split: str, views: int) -> str:
    """What the model's card says for this split and TTA setting, to set beside the figure just measured."""
    from .models.loading import card_of
    from .paths import read_json_object
    card_path = card_of(checkpoint)
    try:
        card = read_json_object(card_path, "model card")
        report = card["metrics"][split]["tta" if views > 1 else "plain"]
        accuracy, card_views = float(report["accuracy"]), int(report.get("tta_views", 1))
    except (FERError, KeyError, TypeError, ValueError):
        return ""
    same = card_views == views
    return (f"its model card says {accuracy:.4f} ({'the same setting' if same else f'with {card_views} TTA views'}, "
            f"{card.get('metrics_precision') or 'PyTorch'}); another engine (--engine int8) or precision "
            f"(--amp off) moves the figure by a few tenths")


def _card_to_record(checkpoint: str):
    """The model card `evaluate --photos --record` writes to: a card of ours, inside the models folder."""
    from .cards.model_cards import FORMAT
    from .models.loading import card_of
    from .paths import models_dir, path_inside, read_json_object
    card = card_of(checkpoint)
    if not card.is_file():
        raise FERError(f"--record keeps the figures in the model's card, and {card} does not exist: record "
                       f"shipped models (models/<name>.pt or an ensemble's .json)")
    if card.resolve() != path_inside(models_dir(), card.name, "model card").resolve():
        raise FERError(f"--record writes only into the model cards of the models folder ({models_dir()}); "
                       f"{card} is elsewhere")
    if read_json_object(card, "model card").get("format") != FORMAT:
        raise FERError(f"{card} is not a model card of ours: --record writes only into those")
    return card


def _evaluate_photos(args, views: int) -> int:
    """evaluate --photos: the whole pipeline (find, frame, classify) on labelled photos."""
    from .inference.photos import load_photo_set, score_photos
    from .inference.recognizer import EmotionRecognizer
    photos = load_photo_set(args.photos)  # before the model loads: a wrong folder is one line at once
    card = _card_to_record(args.checkpoint) if args.record else None  # before minutes of work
    rec = EmotionRecognizer.load(args.checkpoint, engine=args.engine, batch=views)
    report = score_photos(rec, photos, views, stress=args.stress,
                          progress=None if args.json else progress_bar(f"photos of {photos.name}"))
    report.update(checkpoint=str(args.checkpoint), engine=rec.engine)
    if args.record:
        from .cards.model_cards import record_real_photos
        from .bench.timing import machine_line
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


def cmd_ship(args) -> int:
    from .cards.model_cards import ship_card_only, ship_run
    from .paths import models_dir
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
    from .cards.rebalanced import ship_rebalanced
    from .paths import models_dir, read_json_object
    measuring = progress_bar(f"measuring models/{args.name} on PublicTest and PrivateTest, plain and TTA")
    card = ship_rebalanced(args.model, args.name, models_dir(), tau=args.tau, data=args.data, replace=args.replace,
                           progress=measuring)
    shipped = read_json_object(card, "model card")
    adjustment, test = shipped["logit_adjustment"], shipped["metrics"]["test"]["tta"]
    chosen = (f"chosen on PublicTest from {adjustment['public_test_accuracy']}" if "public_test_accuracy" in adjustment
              else "as given")
    print(f"shipped {args.model} rebalanced (tau {adjustment['tau']}, {chosen}) as {card.with_suffix('.pt')}; "
          f"PrivateTest with TTA {test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}")
    return 0


def cmd_calibrate(args) -> int:
    """Temperature scaling for every card with stored predictions: fitted on PublicTest, ECE before and after."""
    from .cards.model_cards import load_cards, update_card
    from .cards.predictions import calibration_of, load_predictions, predictions_path
    from .paths import models_dir
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


def cmd_results_table(args) -> int:
    from .cards.model_cards import load_cards
    from .cards.results_table import results_table, update_tables
    from .paths import PROJECT_ROOT
    if args.write:
        changed = update_tables(PROJECT_ROOT)
        print(f"updated {' and '.join(changed)}" if changed else "README.md and docs/results.md already up to date")
    else:
        print(results_table(load_cards()))
    return 0


def cmd_runs_list(args) -> int:
    from .runs.registry import Registry
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
    from .runs.registry import Registry
    getattr(Registry(args.runs_dir), args.action)(args.run_id)
    print(f"{args.action}: {args.run_id}")
    return 0


def cmd_runs_worker(args) -> int:
    from .runs.worker import run_worker
    run_worker(args.runs_dir, args.slot)
    return 0


def cmd_ensemble(args) -> int:
    """Evaluate the averaged probabilities of checkpoints on val and test; --name saves it to models/."""
    from .cards.ensembles import check_ensemble_name, ensemble_metrics, save_ensemble
    from .cards.model_cards import ensemble_member, measure_card
    from .data.fer2013 import load_dataset
    from .models.ensemble import MAX_MEMBERS
    from .paths import models_dir
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


def cmd_bench(args) -> int:
    if args.what == "live":
        from .bench.live import run
    elif args.what == "live-browser":
        from .bench.live_browser import run
    elif args.what == "predict":
        from .bench.predict import run
    elif args.what == "evaluate":
        from .bench.evaluate import run
    elif args.what == "zoo":
        from .bench.zoo import run
    elif args.what == "detection":
        from .bench.detection import run
    elif args.what == "framing":
        from .bench.framing import run
    elif args.what == "training":
        from .bench.training import run
    else:
        from .bench.models import run_benchmarks as run
    code = run(args)
    return code if isinstance(code, int) else 0  # a benchmark that skipped something says so with 1


def cmd_export(args) -> int:
    """Export a checkpoint or saved ensemble to ONNX (or int8), then check the export against PyTorch."""
    import numpy as np

    from .data.fer2013 import load_dataset
    from .evaluation.export_check import check_int8, verify_export
    from .models.loading import export_onnx
    from .paths import output_file
    output_file(args.onnx, "--onnx file", ".onnx")  # before minutes of quantizing and checking
    if args.int8:
        return _export_int8(args, check_int8)
    path = export_onnx(args.checkpoint, args.onnx)
    print(f"exported {args.checkpoint} to {path} ({path.stat().st_size / 2 ** 20:.1f} MB)")
    try:
        images, what = load_dataset(args.data)["test"].images[:args.check_images], "PrivateTest images"
    except FERError:  # no dataset here: the check still runs, on random faces
        images = np.random.default_rng(0).integers(0, 256, (args.check_images, 48, 48), dtype=np.uint8)
        what = "random 48x48 images (no dataset found)"
    check = verify_export(args.checkpoint, path, images)
    print(f"check on {check['n']} {what}: largest probability difference {check['max_abs_diff']:.2e}, "
          f"top-1 agreement {check['top1_agreement']:.2%} (onnxruntime vs PyTorch fp32)")
    if check["max_abs_diff"] >= 1e-3:
        print("error: the export differs from PyTorch by 1e-3 or more: do not use it", file=sys.stderr)
        return 1
    return 0


def _export_int8(args, check_int8) -> int:
    """int8: calibrated on training faces, then checked on all of PrivateTest; a failed check leaves no file."""
    from .data.fer2013 import load_dataset
    from .models.loading import cached_export
    from .models.quantize import calibration_faces, quantize_onnx
    dataset = load_dataset(args.data)  # calibration and the check need the real faces
    path = quantize_onnx(cached_export(args.checkpoint), args.onnx, calibration_faces(args.data))
    check = check_int8(args.checkpoint, path, dataset["test"])
    for mode, c in check["modes"].items():
        print(f"{mode}: top-1 agreement with PyTorch fp32 {c['top1_agreement']:.2%}, accuracy {c['accuracy']:.2%} "
              f"against {c['reference_accuracy']:.2%} ({c['n']:,} PrivateTest faces)")
    if not check["passed"]:
        path.unlink(missing_ok=True)
        print(f"error: the int8 model misses its targets ({check['problem']}): not written", file=sys.stderr)
        return 1
    print(f"exported {args.checkpoint} as int8 to {path} ({path.stat().st_size / 2 ** 20:.1f} MB)")
    return 0


def cmd_predict(args) -> int:
    """Emotions per face in each file; a file's failure is reported in its entry, the others go on."""
    from .inference.images import is_video_name
    from .inference.recognizer import EmotionRecognizer
    if args.every_n < 1:
        print("error: --every-n must be at least 1", file=sys.stderr)
        return 2
    if args.explain is not None:  # before any model loads or photo is read
        _heat_map_folder(args.explain)
    rec = EmotionRecognizer.load(args.checkpoint, yunet_model=args.yunet, engine=args.engine,
                                 batch=args.tta_views if args.tta else 1, calibrated=not args.uncalibrated)
    if not args.json:
        print(f"{rec.source}, run by {rec.engine}; confidences {rec.calibration}", file=sys.stderr)
    options = dict(tta=args.tta, views=args.tta_views, detect=not args.no_detect)
    photo_options = dict(options, whole_if_none=args.whole_if_none)
    entries, used_stems = [], set()
    for file in args.files:
        try:
            if is_video_name(file):
                frames = [f.to_dict() for f in rec.predict_video(file, every_n=args.every_n, **options)]
                entries.append({"file": file, "frames": frames, **(
                    {"note": "--explain: heat maps are written for photos only"} if args.explain else {})})
            elif args.explain:
                entries.append({"file": file, "faces": _explained_faces(rec, file, args.explain, photo_options,
                                                                         used_stems)})
            else:
                entries.append({"file": file, "faces": [f.to_dict() for f in rec.predict(file, **photo_options)]})
        except FERError as exc:
            entries.append({"file": file, "error": str(exc)})
        if not args.json:
            _print_prediction(entries[-1])
    if args.json:
        print(json.dumps(entries, indent=2))
    return 1 if any("error" in e for e in entries) else 0


def _heat_map_folder(text: str) -> None:
    """--explain's folder: an existing one, or a new one inside an existing folder (like mkdir, not mkdir -p)."""
    from pathlib import Path

    from .paths import is_folder
    folder = Path(text)
    if is_folder(folder):
        return
    if folder.exists() or folder.is_symlink():
        raise FERError(f"--explain {shown(folder, 200)} is not a folder")
    if not is_folder(folder.parent):
        raise FERError(f"--explain {shown(folder, 200)}: its parent folder does not exist; create it first")
    try:
        folder.mkdir()
    except OSError as exc:
        raise FERError(f"--explain {shown(folder, 200)}: {os_reason(exc)}") from None


def _explained_faces(rec, file: str, out_dir: str, options: dict, used_stems: set[str]) -> list[dict]:
    """Each face's result with `saliency_png`: its crop under the saliency map of its emotion, written to
    out_dir/<file stem>-face<N>-<emotion>.png; a stem already used in this command (a/x.jpg, b/x.jpg, a/x.png)
    gets -2, -3, ... so no heat map overwrites another."""
    from pathlib import Path

    from PIL import Image

    from .evaluation.saliency import SaliencyUnavailable
    from .inference.annotate import face_heat_map
    from .inference.framing import crop_region
    from .inference.images import read_image
    from .paths import atomic_write, derived_name, named_path
    rgb = read_image(file)
    try:
        results = rec.predict(rgb, explain=True, **options)
    except SaliencyUnavailable as exc:
        raise FERError(str(exc)) from None
    stem = derived_name(Path(file).stem, "image", room=48)
    stem = next(f"{stem}-{n}" if n > 1 else stem for n in itertools.count(1)
                if (f"{stem}-{n}" if n > 1 else stem) not in used_stems)
    used_stems.add(stem)
    faces = []
    for k, face in enumerate(results, 1):
        side = min(512, max(96, crop_region(face.box, rgb.shape)[2]))
        name = f"{stem}-face{k}-{face.label}"
        out = named_path(out_dir, name, ".png", "heat map file")
        with atomic_write(out, "writing a heat map", suffix=".png") as tmp:
            Image.fromarray(face_heat_map(rgb, face, side=side)).save(tmp)
        faces.append({**face.to_dict(), "saliency_png": str(out)})
    return faces


def _print_prediction(entry: dict) -> None:
    if "error" in entry:
        print(f"{entry['file']}: error: {entry['error']}", file=sys.stderr)
        return
    def describe(faces):
        return ", ".join(f"{f['label']} {f['confidence']:.0%} " + ("(no face found: the whole photo read as one face)"
                                                                  if f.get("whole_image") else f"at {f['box']}")
                         for f in faces) or "no face found (--whole-if-none reads the whole photo as one face)"
    if "frames" in entry:
        print(f"{entry['file']}: {len(entry['frames'])} frames analysed")
        for frame in entry["frames"]:
            print(f"  frame {frame['frame']} ({frame['time']:.2f}s): {describe(frame['faces'])}")
        if "note" in entry:
            print(f"  {entry['note']}")
        return
    print(f"{entry['file']}: {describe(entry['faces'])}")
    for face in entry["faces"]:
        if "saliency_png" in face:
            print(f"  heat map of face {face['box']}: {face['saliency_png']}")


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line that points to --help, instead of argparse's whole usage block."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


ENGINE_HELP = ("what runs the network: torch, onnxruntime, int8, or auto (default, or $FER_ENGINE; evaluate on FER2013 "
               "defaults to torch, as the model cards measure): auto is the fastest on this machine that agrees with "
               "PyTorch fp32, measured once per model")


def build_parser() -> argparse.ArgumentParser:
    from .evaluation.tta import DEFAULT_VIEWS, views_arg
    from .inference.engines import ENGINE_CHOICES
    from .models.registry import list_models
    from .training.config import get_args_parser, on_off
    parser = OneLineErrors(prog="python -m fer_core", description="Facial emotion recognition on FER2013")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="dataset commands")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    report = data_commands.add_parser("report", help="per-split, per-class counts and the imbalance ratio")
    report.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_data_report)
    audit = data_commands.add_parser("audit", help="data health: duplicates (also across splits), label conflicts, blanks")
    audit.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    audit.add_argument("--out", help="write the training exclusion list (one image id per line) to this file")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_data_audit)

    train = commands.add_parser("train", help="train a model into a run folder")
    get_args_parser(train)
    train.set_defaults(func=cmd_train)

    from .training.trial import PRUNERS
    from .tuning.study import SAMPLERS
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
    tune.add_argument("--json", action="store_true", help="print the study's summary as JSON")
    get_args_parser(tune)
    tune.set_defaults(func=cmd_tune)

    evaluate = commands.add_parser("evaluate", help="metrics of a checkpoint on val, test or your own labelled faces")
    evaluate.add_argument("--checkpoint",
                          help="a checkpoint (.pt) or a saved ensemble (models/<name>.json); default: the shipped model")
    evaluate.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
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
    evaluate.add_argument("--tta-views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--amp", type=on_off, default=True, metavar="on|off",
                          help="bf16 where the device runs it natively and it is faster (default on); off: fp32")
    evaluate.add_argument("--engine", choices=ENGINE_CHOICES, default=None, help=ENGINE_HELP)
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

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
    ship.add_argument("--data", help="dataset to measure the card's metrics on (default: the run's)")
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
    rebalance.add_argument("--data", help="the dataset: its Training counts give the prior; measured on its test splits")
    rebalance.set_defaults(func=cmd_rebalance)

    runs = commands.add_parser("runs", help="the run registry: list, cancel, resume, delete")
    runs_commands = runs.add_subparsers(dest="runs_command", required=True, metavar="SUBCOMMAND")
    runs_list = runs_commands.add_parser("list", help="id, architecture, state, epochs, best val and test accuracy")
    runs_list.add_argument("--json", action="store_true")
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

    calibrate = commands.add_parser("calibrate", help="fit each model card's temperature on PublicTest (from its "
                                    "stored predictions) and report the expected calibration error before and after")
    calibrate.add_argument("--write", action="store_true", help="store the temperatures in the cards")
    calibrate.add_argument("--models-dir", help="default $FER_MODELS_DIR, else models/ in the project")
    calibrate.set_defaults(func=cmd_calibrate)

    table = commands.add_parser("results-table", help="the results table (docs/results.md) and the README's model zoo, "
                                "made from models/*.json")
    table.add_argument("--write", action="store_true", help="rewrite the tables in docs/results.md and README.md")
    table.set_defaults(func=cmd_results_table)

    bench = commands.add_parser("bench", help="speed benchmarks: decode, cache, training and evaluation images/s")
    bench.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    bench.add_argument("--arch", nargs="*", default=list(list_models()), help="architectures to time")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--batch-size", type=int, default=128)
    bench.add_argument("--seconds", type=float, default=10.0, help="time budget per measurement")
    bench.add_argument("--no-predict", action="store_true", help="skip the one-photo prediction benchmark")
    bench.add_argument("--no-eval", action="store_true", help="skip the evaluation (TTA) figures")
    bench.add_argument("--time-to-accuracy", type=_fraction, nargs="+", metavar="TARGET",
                       help="also train each --arch for real and report the training time to each of these "
                            "PrivateTest accuracies (e.g. 0.68 0.70)")
    bench.add_argument("--from-run", metavar="RUN_DIR",
                       help="only report the time-to-accuracy of a finished run trained with --track-test")
    bench.add_argument("--epochs", type=int, default=30, help="epoch budget of the time-to-accuracy run")
    bench.add_argument("--epoch-size", type=int, help="images per epoch of the time-to-accuracy run (default all)")
    bench.add_argument("--compile", action="store_true", help="torch.compile in the time-to-accuracy run")
    bench.set_defaults(func=cmd_bench, what="models")
    kinds = bench.add_subparsers(dest="what", metavar="{live,live-browser,predict,evaluate,zoo,training,detection,framing}",
                                 help="instead of the models' figures: the Live page's frame rate, one photo end to end, "
                                      "or evaluation's speed per engine")
    bench_live = kinds.add_parser("live", help="the Live page's frame processing on a 640x480 clip")
    bench_live.add_argument("--model", default=None, help="checkpoint (default: models/default.pt)")
    bench_live.add_argument("--engine", choices=ENGINE_CHOICES, default=None, help=ENGINE_HELP)
    bench_live.add_argument("--clip", default=None, help="a video file instead of the generated astronaut clip")
    bench_live.add_argument("--seconds", type=float, default=5.0, help="measuring time per setting")
    bench_live.add_argument("--detect-every", type=int, nargs="+", default=[1, 3, 5])
    bench_live.add_argument("--tta-views", type=views_arg, default=2, help="views for the TTA-on rows")
    bench_live.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    bench_browser = kinds.add_parser("live-browser", help="the Live page in Chromium with a 30 fps fake camera, "
                                     "against a pass-through callback (the WebRTC path's ceiling)")
    bench_browser.add_argument("--seconds", type=float, default=20.0, help="readings per mode, one a second")
    bench_browser.add_argument("--server-env", nargs="*", metavar="KEY=VALUE", help="environment of the dashboard server "
                               "(experiments, e.g. OMP_NUM_THREADS=1)")
    bench_browser.add_argument("--no-ceiling", action="store_true", help="skip the pass-through run")
    bench_evaluate = kinds.add_parser("evaluate", help="evaluate --tta's speed with each engine (PyTorch fp32 and "
                                      "bf16, ONNX Runtime fp32 and int8) on PrivateTest, in one run")
    bench_evaluate.add_argument("--checkpoint", help="default: models/default.pt")
    bench_evaluate.add_argument("--views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")
    bench_evaluate.add_argument("--limit", type=int, help="only the first N PrivateTest faces (default all 3,589)")
    bench_evaluate.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    bench_detection = kinds.add_parser("detection", help="faces found on labelled photos (clean and stress copy) and "
                                       "false faces on photos without one, plain scan and thorough search")
    bench_detection.add_argument("--photos", metavar="DIR|CSV", help="labelled photos (as evaluate --photos)")
    bench_detection.add_argument("--yunet", metavar="ONNX", help="YuNet's model file instead of the Haar cascade")
    bench_framing = kinds.add_parser("framing", help="where a detector's box sits in FER2013's 48x48 crops: the frame "
                                     "crops of real photos are cut to (inference/framing.py)")
    bench_framing.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    bench_framing.add_argument("--faces", type=int, default=3000, help="training faces measured (default %(default)s)")
    bench_framing.add_argument("--yunet", metavar="ONNX", help="YuNet's model file instead of the Haar cascade")
    bench_zoo = kinds.add_parser("zoo", help="ms per face of each shipped model and ensemble (one thread, TTA off "
                                 "and on, the engine auto picks); --write stores them in the cards")
    bench_zoo.add_argument("--write", action="store_true", help="store the figures in the model cards")
    bench_zoo.add_argument("--models-dir", help="default $FER_MODELS_DIR, else models/ in the project")
    bench_training = kinds.add_parser("training", help="what speeds up training here: the training step with each "
                                      "layout, batch size, crop and thread count, against the default, in one run")
    bench_training.add_argument("--arch", default="fer_vgg_small")
    bench_training.add_argument("--device", default="auto")
    bench_training.add_argument("--seconds", type=float, default=10.0, help="measuring time per row")
    bench_predict = kinds.add_parser("predict", help="one photo end to end: decode, detection, classification")
    bench_predict.add_argument("--checkpoint", help="default: models/default.pt, else an untrained fer_vgg_small")
    bench_predict.add_argument("--repeats", type=int, default=30)
    bench_predict.add_argument("--yunet", help="time YuNet detection with this ONNX file instead of Haar")
    bench_predict.add_argument("--threads", type=int, help="torch threads (default: torch's, one per core)")

    predict = commands.add_parser("predict", help="emotions of the faces in photos (and videos)")
    predict.add_argument("files", nargs="+", metavar="FILE", help="jpg, png, webp, bmp, gif; or mp4, avi, mov, webm")
    predict.add_argument("--checkpoint", help="a checkpoint (default: the shipped model, models/default.pt)")
    predict.add_argument("--tta", action="store_true", help="test-time augmentation")
    predict.add_argument("--tta-views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")
    predict.add_argument("--no-detect", action="store_true", help="each image is one face (pre-cropped faces)")
    predict.add_argument("--whole-if-none", action="store_true",
                         help="a photo where no face is found is read whole as one face, marked \"whole_image\"")
    predict.add_argument("--yunet", help="YuNet ONNX file for face detection (default $FER_YUNET_MODEL, else Haar)")
    predict.add_argument("--every-n", type=int, default=5, help="videos: analyse every n-th frame (default %(default)s)")
    predict.add_argument("--engine", choices=ENGINE_CHOICES, default=None, help=ENGINE_HELP)
    predict.add_argument("--uncalibrated", action="store_true",
                         help="raw softmax confidences (default: temperature-scaled with the model card's temperature)")
    predict.add_argument("--explain", metavar="OUTDIR",
                         help="also write each face's saliency heat map (Grad-CAM: where the network found its "
                              "emotion) as OUTDIR/<photo>-face<N>-<emotion>.png; photos only, needs a PyTorch "
                              "checkpoint (not an ONNX file)")
    predict.add_argument("--json", action="store_true", help="a JSON list: per file, file and faces (or frames) or error")
    predict.set_defaults(func=cmd_predict)

    export = commands.add_parser("export", help="export a checkpoint or saved ensemble to ONNX (checked against PyTorch)")
    export.add_argument("checkpoint", help="a .pt checkpoint or a saved ensemble (models/<name>.json)")
    export.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    export.add_argument("--data", help="dataset for the check (default $FER_DATA, then data/)")
    export.add_argument("--check-images", type=int, default=256, help="PrivateTest images compared (default 256)")
    export.add_argument("--int8", action="store_true",
                        help="quantize to int8 (ONNX Runtime, static QDQ, calibrated on 300 training faces); checked "
                             "on all of PrivateTest, plain and with TTA: refused below 99%% top-1 agreement with "
                             "PyTorch fp32 or more than 0.5 points of accuracy lost")
    export.set_defaults(func=cmd_export)

    ensemble = commands.add_parser("ensemble", help="evaluate checkpoints' averaged probabilities; --name saves it")
    ensemble.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="two or more .pt files")
    ensemble.add_argument("--data", help="dataset path (default $FER_DATA, then data/)")
    ensemble.add_argument("--tta-views", type=views_arg, default=DEFAULT_VIEWS, help="TTA views (default %(default)s)")
    ensemble.add_argument("--name", help="save as models/<name>.json (members copied in float16)")
    ensemble.add_argument("--models-dir", help="default $FER_MODELS_DIR, else models/ in the project")
    ensemble.add_argument("--json", action="store_true")
    ensemble.set_defaults(func=cmd_ensemble)
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

"""What Compare shows in words and tables: the overview rows, the written reading, a confusion cell's images."""
from __future__ import annotations

import numpy as np

from fer_core.cards import ENSEMBLE, EXPERIMENT, REFERENCE, RUN, SHIPPED, UNSAVED_ENSEMBLE, Entry
from fer_core.labels import EMOTIONS

SPLIT_NAMES = {"val": "PublicTest (val)", "test": "PrivateTest (test)"}
# A shipped model has its weights in models/; a reference card only its figures and per-image predictions.
KIND_LABELS = {SHIPPED: "shipped model", ENSEMBLE: "ensemble", UNSAVED_ENSEMBLE: "ensemble (unsaved)", RUN: "run",
               REFERENCE: "reference card", EXPERIMENT: "experiment"}  # in the order Compare groups them
DEFAULT_NAME = "default"


def kind_label(entry: Entry) -> str:
    return KIND_LABELS.get(entry.kind, entry.kind)


def grouped(entries: list[Entry], experiments: bool = False) -> list[Entry]:
    """Entries grouped by kind (shipped models first, the default at the top), best PrivateTest (TTA) first within
    a kind; experiments only when asked for."""
    order = list(KIND_LABELS)
    kept = [e for e in entries if experiments or e.kind != EXPERIMENT]

    def key(e: Entry):
        accuracy = e.accuracy("test", True) if e.report("test", True) else None
        return (order.index(e.kind) if e.kind in order else len(order),
                not (e.kind == SHIPPED and e.name == DEFAULT_NAME), -(accuracy or 0.0), e.name)
    return sorted(kept, key=key)


def _best_val(entry: Entry) -> float | None:
    """Best per-epoch val accuracy of the learning curve: what a run still training has."""
    values = [m["val_accuracy"] for m in entry.learning_curve if m.get("val_accuracy") is not None]
    return max(values) if values else None


def summary_rows(entries: list[Entry]) -> list[dict]:
    """One row per entry for the overview table (accuracies in %)."""
    def pct(value):
        return None if value is None else round(100 * value, 2)
    rows = []
    for e in entries:
        test_tta = e.report("test", True)
        rows.append({
            "name": e.name, "kind": kind_label(e), "architecture": e.arch, "sweep": e.sweep or "",
            "state": e.state or "", "parameters": e.parameters, "balancing": e.balance or "",
            "epochs": e.epochs, "val acc %": pct(e.accuracy("val", False) if e.report("val", False) else _best_val(e)),
            "val acc TTA %": pct(e.accuracy("val", True)), "test acc %": pct(e.accuracy("test", False)),
            "test acc TTA %": pct(e.accuracy("test", True)),
            "test macro-F1 (TTA)": None if test_tta is None else round(test_tta["macro_f1"], 4),
            **{f"{c} recall (TTA)": None if test_tta is None else round(test_tta["per_class"][c]["recall"], 3)
               for c in ("disgust", "fear")},  # the rare and the most confused class: what balancing is for
            "training min": None if e.training_seconds is None else round(e.training_seconds / 60, 1),
            "device": e.device or "", "images/s": None if e.images_per_s is None else round(e.images_per_s),
            "note": "; ".join(n for n in (_quick_run_note(test_tta or e.report("test", False)), e.note) if n),
        })
    return rows


QUICK_RUN_TEST_IMAGES = 3000  # PrivateTest has 3,589 images, 3,156 with a FER+ majority; a --limit run far fewer


def _quick_run_note(report: dict | None) -> str:
    """A mark for figures measured on a small part of PrivateTest (a --limit run): not comparable with the others."""
    n = (report or {}).get("n")
    return f"quick run: PrivateTest figures on {n} images only, not comparable" if n and n < QUICK_RUN_TEST_IMAGES else ""


def cell_indices(labels: np.ndarray, probs: np.ndarray, true: int, predicted: int) -> np.ndarray:
    """Indices of the images of class `true` predicted as `predicted`, most confident first."""
    pred = probs.argmax(1)
    idx = np.flatnonzero((labels == true) & (pred == predicted))
    return idx[np.argsort(-probs[idx, predicted], kind="stable")]


def most_confused_pair(report: dict) -> tuple[str, str, int, float] | None:
    """(true, predicted, count, share of the true class) of the largest off-diagonal cell."""
    cm = np.asarray(report["confusion_matrix"])
    off = cm.copy()
    np.fill_diagonal(off, 0)
    if off.sum() == 0:
        return None
    t, p = np.unravel_index(off.argmax(), off.shape)
    row = cm[t].sum()
    return EMOTIONS[t], EMOTIONS[p], int(off[t, p]), float(off[t, p] / row) if row else 0.0


def reading(reports: dict[str, dict]) -> list[str]:
    """Sentences describing each model and their differences, computed from their reports."""
    lines = []
    for name, report in reports.items():
        f1 = {c: m["f1"] for c, m in report["per_class"].items() if m["support"]}
        if not f1:
            lines.append(f"**{name}**: no images in this split.")
            continue
        best, worst = max(f1, key=f1.get), min(f1, key=f1.get)
        text = (f"**{name}**: accuracy {report['accuracy']:.1%}, macro-F1 {report['macro_f1']:.3f}; "
                f"best class *{best}* (F1 {f1[best]:.2f}), worst *{worst}* (F1 {f1[worst]:.2f})")
        pair = most_confused_pair(report)
        if pair:
            t, p, count, share = pair
            text += f"; most often mistakes *{t}* for *{p}* ({count} images, {share:.0%} of {t})"
        lines.append(text + ".")
    if len(reports) >= 2:
        ranked = sorted(reports.items(), key=lambda kv: -kv[1]["accuracy"])
        (top, r1), (low, r2) = ranked[0], ranked[-1]
        lines.append(f"**{top}** is the most accurate here, {100 * (r1['accuracy'] - r2['accuracy']):.1f} "
                     f"points above **{low}**.")
        gaps = {c: max(r["per_class"][c]["f1"] for _, r in ranked) - min(r["per_class"][c]["f1"] for _, r in ranked)
                for c in EMOTIONS}
        c = max(gaps, key=gaps.get)
        leader = max(ranked, key=lambda kv: kv[1]["per_class"][c]["f1"])[0]
        lines.append(f"They differ most on *{c}*: F1 varies by {gaps[c]:.2f}, best with **{leader}**.")
    return lines

"""Compare: every run and reference model in one table; 2 to 4 side by side; ensembles of them."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import streamlit as st

from dashboard.compare.charts import (confusion_figure, per_class_figure, photo_confusion_figure, reliability_figure,
                                      tta_gain_figure)
from dashboard.compare.saliency import cell_heat_maps, class_means, face_tiles
from dashboard.compare.studies import load as load_study
from dashboard.compare.studies import study_figures, study_names, trials_table
from dashboard.compare.views import DEFAULT_NAME, SPLIT_NAMES, cell_indices, grouped, kind_label, reading, summary_rows
from dashboard.shared.background import run_in_background
from dashboard.shared.charts import learning_curves_figure
from dashboard.shared.data_access import chosen_path, dataset_at, dataset_version
from fer_core.cards import (EXPERIMENT, RUN, Entry, NoPredictions, all_entries, architectures_without_cards, ensemble_members,
                            ensemble_metrics, entry_views, prediction_job, predictions_at_hand, real_photo_rows,
                            save_ensemble, unsaved_ensemble)
from fer_core.data import resolve_data_path
from fer_core.errors import FERError
from fer_core.evaluation import (DEFAULT_VIEWS, MAX_VIEWS, SaliencyUnavailable, calibrate, mcnemar, metrics_report,
                                 reliability, scaled)
from fer_core.labels import EMOTIONS
from fer_core.models import file_identity
from fer_core.paths import data_dir, models_dir, runs_dir
from fer_core.tuning import default_storage

NO_CELL = "—"
CELL_IMAGES = 24  # images shown per model in the cell explorer




# what fits the page's width; "All columns" shows the rest
COMPACT_COLUMNS = ("name", "kind", "architecture", "parameters", "val acc TTA %", "test acc %", "test acc TTA %",
                   "test macro-F1 (TTA)", "note")


def load_entries() -> list[Entry]:
    try:
        entries = all_entries()
    except Exception as exc:  # a broken registry must not take the page down
        st.error(f"Could not read the runs: {exc}")
        entries = []
    extra = st.session_state.get("ensemble_entry")
    return entries + ([extra] if extra else [])


# ----------------------------------------------------------------------------- the table of everything

def overview(entries: list[Entry]) -> None:
    st.subheader("All runs and reference models")
    missing = architectures_without_cards(entries)
    if missing:
        st.info("No reference model card yet for: " + ", ".join(f"`{a}`" for a in missing)
                + ". Cards appear here when a run is shipped with `python -m fer_core ship`.")
    if not entries:
        st.warning("No runs and no model cards yet: train a model on the Train page, or ship one into models/.")
        return
    experiments = sum(e.kind == EXPERIMENT for e in entries)
    with_experiments = st.toggle(f"Show the {experiments} experiments (ablations and recipes that lost)", value=False,
                                 key="compare_experiments", disabled=not experiments)
    table = pd.DataFrame(summary_rows(grouped(entries, experiments=with_experiments)))
    table["name"] = [f"{n} ★" if i == 0 and n == DEFAULT_NAME else n for i, n in enumerate(table["name"])]
    search_col, arch_col, kind_col, sweep_col = st.columns([2, 2, 2, 2])
    text = search_col.text_input("Filter by name", key="compare_search", placeholder="part of a name")
    archs = arch_col.multiselect("Architecture", sorted(table["architecture"].unique()), key="compare_arch")
    kinds = kind_col.multiselect("Kind", sorted(table["kind"].unique()), key="compare_kind")
    sweeps = sorted(s for s in table["sweep"].unique() if s)
    sweep = sweep_col.selectbox("Sweep", ["all"] + sweeps, key="compare_sweep", disabled=not sweeps)
    shown = table
    if text:
        shown = shown[shown["name"].str.contains(text, case=False, regex=False)]
    if archs:
        shown = shown[shown["architecture"].isin(archs)]
    if kinds:
        shown = shown[shown["kind"].isin(kinds)]
    if sweep != "all":
        shown = shown[shown["sweep"] == sweep]
    every_column = st.toggle("All columns", key="compare_all_columns",
                             help="balancing, epochs, sweep, state, per-class recalls, training time, device, speed")
    st.dataframe(shown, hide_index=True, width="stretch", column_order=None if every_column else COMPACT_COLUMNS,
                 column_config={"parameters": st.column_config.NumberColumn(format="compact"),
                                "note": st.column_config.TextColumn(width="large")})
    st.download_button("Table as CSV", shown.to_csv(index=False).encode(), "fer-compare.csv", "text/csv",
                       key="compare_csv")
    if sweep != "all":
        keys = [e.key for e in entries if e.sweep == sweep]
        st.button(f"Compare this sweep's runs side by side{' (the first 4)' if len(keys) > 4 else ''}",
                  key="compare_sweep_pick", on_click=_set_pick, args=(keys[:4],))


def _set_pick(keys: list[str]) -> None:
    st.session_state["compare_pick"] = keys


# ----------------------------------------------------------------------------- side by side

def pick(entries: list[Entry]) -> list[Entry]:
    by_key = {e.key: e for e in entries}
    if "compare_pick" in st.session_state:  # drop picks whose run or card is gone
        st.session_state["compare_pick"] = [k for k in st.session_state["compare_pick"] if k in by_key]
    else:
        # the default model first, then the best of the rest (by PrivateTest with TTA, as the table sorts)
        rated = sorted((e for e in entries if e.report("test", True)),
                       key=lambda e: (e.name != "default" or e.kind == RUN, -e.accuracy("test", True)))
        st.session_state["compare_pick"] = [e.key for e in rated[:2]]
    keys = st.multiselect("Models to compare (up to 4)", list(by_key), key="compare_pick", max_selections=4,
                          format_func=lambda k: f"{by_key[k].name} · {kind_label(by_key[k])} · {by_key[k].arch}")
    return [by_key[k] for k in keys]


def side_by_side(chosen: list[Entry], data_box) -> None:
    split_col, tta_col, norm_col = st.columns(3)
    split = split_col.radio("Split", list(SPLIT_NAMES), format_func=SPLIT_NAMES.get, index=1, key="compare_split",
                            horizontal=True)
    tta = tta_col.toggle("Test-time augmentation", value=True, key="compare_tta")
    normalised = norm_col.radio("Confusion matrix", ["counts", "row-normalised"], key="compare_norm",
                                horizontal=True) == "row-normalised"
    reports = {}
    names = [e.name for e in chosen]
    label = {e.key: e.name if names.count(e.name) == 1 else f"{e.name} ({kind_label(e)})" for e in chosen}
    for col, entry in zip(two_per_row(len(chosen)), chosen):
        with col:
            st.markdown(f"**{label[entry.key]}**  \n{kind_label(entry)} · {entry.arch}")
            report = entry.report(split, tta) or evaluated_now(entry, split, tta, data_box)
            if report is None:
                continue
            reports[label[entry.key]] = report
            st.caption(f"accuracy {report['accuracy']:.2%} · macro-F1 {report['macro_f1']:.3f} · {report['n']:,} images"
                       + (f" · TTA {report.get('tta_views')} views" if tta else ""))
            event = st.plotly_chart(confusion_figure(report, normalised), width="stretch",
                                    key=f"cm:{entry.key}", on_select="rerun", selection_mode="points")
            _take_cell_from_chart(entry.key, event)
            clean = report.get("clean")
            if clean:
                st.caption(f"clean PrivateTest: {clean['accuracy']:.2%} on {clean['n']:,} images "
                           f"({clean['removed']} with a copy in Training left out)", help=clean["rule"])
    if len(chosen) == 2:
        significance(chosen, split, tta, label)
    cell_explorer(chosen, split, tta, data_box)
    mean_heat_maps(chosen, data_box)
    if reports:
        st.markdown("#### Reading")
        st.markdown("\n".join(f"- {line}" for line in reading(reports)))
        st.markdown("#### Per-class precision, recall and F1")
        st.plotly_chart(per_class_figure(reports), width="stretch", key="per_class")
    calibration(chosen, split, tta, label)
    curves = {label[e.key]: e.learning_curve for e in chosen if e.learning_curve}
    if curves:
        st.markdown("#### Learning curves")
        st.plotly_chart(learning_curves_figure(curves), width="stretch", key="curves")
    gains = {label[e.key]: {s: 100 * (e.accuracy(s, True) - e.accuracy(s, False)) for s in SPLIT_NAMES
                      if e.report(s, True) and e.report(s, False)} for e in chosen}
    gains = {n: g for n, g in gains.items() if g}
    if gains:
        st.markdown("#### What TTA adds")
        st.plotly_chart(tta_gain_figure(gains), width="stretch", key="tta_gain")


def two_per_row(n: int) -> list:
    """Columns for n models, two per row, so 3 or 4 confusion matrices stay readable."""
    columns = []
    for _ in range((n + 1) // 2):
        columns += st.columns(2)
    return columns[:n]


def significance(chosen: list[Entry], split: str, tta: bool, label: dict) -> None:
    """McNemar's test on the two models' per-image predictions, in words."""
    st.markdown("#### Is the difference real?")
    a, b = chosen
    probs = [_known_predictions(e, split, tta) for e in chosen]
    if any(p is None for p in probs):
        missing = [label[e.key] for e, p in zip(chosen, probs) if p is None]
        st.caption("McNemar's test needs both models' per-image predictions; not yet known for "
                   f"{', '.join(missing)}. They come with a card's predictions file, or once the cell explorer "
                   "below has predicted with a checkpoint.")
        return
    labels = probs[0][1]
    if not np.array_equal(labels, probs[1][1]):
        st.caption("The two models' per-image predictions are on different images: no significance test.")
        return
    result = mcnemar(probs[0][0].argmax(1) == labels, probs[1][0].argmax(1) == labels)
    text = result.in_words(label[a.key], label[b.key])
    (st.success if result.significant else st.info)(f"{SPLIT_NAMES[split]}{', TTA' if tta else ''}: {text}")


def calibration(chosen: list[Entry], split: str, tta: bool, label: dict) -> None:
    """How far each model's confidence is from its accuracy (ECE, reliability diagram), raw and after temperature
    scaling fitted on PublicTest: from stored or cached per-image predictions, no network run."""
    curves, lines = {}, []
    for entry in chosen:
        val, shown = _known_predictions(entry, "val", tta), _known_predictions(entry, split, tta)
        if val is None or shown is None:
            continue
        c = calibrate(*val, *shown)
        after = scaled(shown[0], c["temperature"])
        curves[f"{label[entry.key]} (raw)"] = reliability(*shown)
        curves[f"{label[entry.key]} (calibrated)"] = reliability(after, shown[1])
        lines.append(f"- **{label[entry.key]}**: ECE {100 * c['test_ece']:.1f}% raw, "
                     f"{100 * c['test_ece_calibrated']:.1f}% with temperature {c['temperature']:.2f} (fitted on "
                     f"PublicTest; accuracy unchanged: temperature scaling never changes the top class)")
    if not curves:
        return
    st.markdown(f"#### Calibration on {SPLIT_NAMES[split]}{' with TTA' if tta else ''}")
    st.markdown("\n".join(lines))
    st.plotly_chart(reliability_figure(curves), width="stretch", key="reliability")


def _known_predictions(entry: Entry, split: str, tta: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(probabilities, labels) already at hand, without running a network: a card's stored predictions (with
    their own labels, no dataset needed), or the prediction cache of a checkpoint on the dataset in use."""
    if entry.stored is not None:
        return entry.stored.get(split, tta), entry.stored.labels[split]
    dataset_path = st.session_state.get("_compare_dataset")
    if entry.checkpoint is None or not dataset_path:
        return None
    try:
        dataset = dataset_at(dataset_path)
        probs = predictions_at_hand(entry, dataset, split, tta)
    except (FERError, OSError):
        return None
    return None if probs is None else (probs, dataset[split].labels)


def evaluated_now(entry: Entry, split: str, tta: bool, data_box) -> dict | None:
    """A report for an entry that has a checkpoint but no stored evaluation (e.g. a run still training),
    computed on request from the cached per-image predictions."""
    st.info(f"No {'TTA ' if tta else ''}evaluation on {SPLIT_NAMES[split]} stored"
            + (f": {entry.note}" if entry.note else "."))
    if entry.checkpoint is None:
        return None
    flag = f"evaluate:{entry.key}:{split}:{tta}"
    if not (st.button("Evaluate its checkpoint now", key=flag) or st.session_state.get(f"_{flag}")):
        return None
    st.session_state[f"_{flag}"] = True  # stays evaluated on later reruns (the predictions are cached)
    dataset_path = data_box()
    probs = None if dataset_path is None else entry_predictions(entry, dataset_path, split, tta)
    if probs is None:
        return None
    labels = dataset_at(dataset_path)[split].labels
    report = metrics_report(labels, probs.argmax(1))
    st.caption(f"evaluated from {entry.checkpoint.name} as it is now")
    return report


def _take_cell_from_chart(key: str, event) -> None:
    """A click on a heatmap cell chooses that cell in the explorer (once per new click)."""
    try:
        points = event.selection.points
    except AttributeError:
        return
    if not points:
        return
    point = points[0]
    cell = (point.get("y"), point.get("x"))
    if cell[0] in EMOTIONS and cell[1] in EMOTIONS and st.session_state.get(f"_cell_from:{key}") != cell:
        st.session_state[f"_cell_from:{key}"] = cell
        st.session_state["cell_true"], st.session_state["cell_pred"] = cell


def cell_explorer(chosen: list[Entry], split: str, tta: bool, data_box) -> None:
    st.markdown("#### Images in a cell")
    st.caption("Click a cell of a confusion matrix, or choose one here. The images come from the dataset; which "
               "ones fall in a cell comes from a card's stored per-image predictions, or from its checkpoint.")
    true_col, pred_col, heat_col = st.columns(3)
    true = true_col.selectbox("True emotion", [NO_CELL, *EMOTIONS], key="cell_true")
    predicted = pred_col.selectbox("Predicted emotion", [NO_CELL, *EMOTIONS], key="cell_pred")
    heat = heat_col.toggle("Heat maps", key="cell_heat",
                           help="Grad-CAM: where on each face the network found the evidence for the predicted "
                                "emotion and for the true one (red: most); needs the model's checkpoint.")
    if NO_CELL in (true, predicted):
        return
    dataset_path = data_box()
    if dataset_path is None:
        return
    t, p = EMOTIONS.index(true), EMOTIONS.index(predicted)
    for col, entry in zip(two_per_row(len(chosen)), chosen):
        with col:
            st.markdown(f"**{entry.name}**: true *{true}*, predicted *{predicted}*")
            probs = entry_predictions(entry, dataset_path, split, tta)
            if probs is None:
                continue
            data = dataset_at(dataset_path)[split]
            idx = cell_indices(data.labels, probs, t, p)
            st.caption(f"{len(idx)} images" + (f", the {CELL_IMAGES} most confident shown" if len(idx) > CELL_IMAGES else ""))
            if len(idx):
                shown = idx[:CELL_IMAGES]
                captions = [f"{predicted} {probs[i, p]:.0%}" + (f" · {true} {probs[i, t]:.0%}" if t != p else "")
                            for i in shown]
                tiles = cell_heat_tiles(entry, data.images[shown], t, p,
                                        entry_views(entry, tta)) if heat else None
                if tiles is None:
                    st.image([data.images[i] for i in shown], width=96, caption=captions)
                else:  # each face beside its own maps, so no map is matched to its face by position alone
                    st.image(tiles, width=96 * (3 if t != p else 2), caption=captions)
                with st.expander("Probabilities of these images"):
                    table = pd.DataFrame(np.round(100 * probs[shown], 1), columns=list(EMOTIONS))
                    table.insert(0, "image", [str(data.ids[i]) for i in shown])
                    st.dataframe(table, hide_index=True)


def cell_heat_tiles(entry: Entry, faces: np.ndarray, t: int, p: int, views: int) -> list[np.ndarray] | None:
    """Each of the cell's faces beside its heat map for the predicted class and, where it differs, the true class
    (what made it say one instead of the other); None, with the reason shown, where there are none."""
    if entry.checkpoint is None:
        st.info(f"No heat maps for {entry.name}: {entry.note or 'it has no checkpoint here'}.")
        return None
    try:
        targets = [p] + ([t] if t != p else [])
        maps = [cell_heat_maps(str(entry.checkpoint), faces, target, views) for target in targets]
    except (SaliencyUnavailable, FERError) as exc:
        st.info(f"No heat maps for {entry.name}: {exc}.")
        return None
    st.caption("Each face, then where the network found *" + "*, then *".join(EMOTIONS[k] for k in targets) + "*"
               + (f" ({views} TTA views)" if views > 1 else "") + " (red: most).")
    tiles = []
    for face, row in zip(faces, zip(*maps)):
        side = row[0].shape[0]
        enlarged = cv2.cvtColor(cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR), cv2.COLOR_GRAY2RGB)
        tiles.append(np.concatenate([enlarged, *row], axis=1))
    return tiles


def mean_heat_maps(chosen: list[Entry], data_box) -> None:
    """Per picked model, the mean heat map of each class over PrivateTest's faces of that class."""
    st.markdown("#### Where each model looks, per emotion")
    if not st.toggle("Mean heat map per emotion on PrivateTest", key="mean_heat",
                     help="For each emotion, Grad-CAM's map of that emotion averaged over PrivateTest's faces "
                          "labelled with it (scaled to its own maximum), laid over their mean face. About 15 s "
                          "per network on 2 CPU cores."):
        return
    dataset_path = data_box()
    if dataset_path is None:
        return
    test = dataset_at(dataset_path)["test"]
    for col, entry in zip(two_per_row(len(chosen)), chosen):
        with col:
            st.markdown(f"**{entry.name}**")
            if entry.checkpoint is None:
                st.info(f"No heat maps: {entry.note or 'it has no checkpoint here'}.")
                continue
            key = f"class-means:{entry.checkpoint}:{file_identity(entry.checkpoint)}@{dataset_version(dataset_path)}"
            stored = st.session_state.setdefault("class_means", {})
            try:
                if key not in stored:
                    result = run_in_background(key, f"Heat maps of PrivateTest with {entry.name}", class_means,
                                               str(entry.checkpoint), test.images, test.labels)
                    if result is None:
                        continue
                    stored[key] = result
            except (SaliencyUnavailable, FERError) as exc:
                st.info(f"No heat maps: {exc}.")
                continue
            maps, faces = stored[key]
            st.image(face_tiles(faces, maps), width=96, caption=list(EMOTIONS))


def entry_predictions(entry: Entry, dataset_path: str, split: str, tta: bool) -> np.ndarray | None:
    """Per-image probabilities in the order of the dataset's split: at hand (stored or cached), else predicted in
    the background while the page shows progress (None until then)."""
    try:
        dataset = dataset_at(dataset_path)
        probs = predictions_at_hand(entry, dataset, split, tta)
        if probs is not None:
            return probs
        key, job, args = prediction_job(entry, dataset, split, tta)
        views = entry_views(entry, tta)
        label = f"Predicting {SPLIT_NAMES[split]} with {entry.name}" + (f" ({views} TTA views)" if views > 1 else "")
        return run_in_background(f"{key}@{dataset_version(dataset_path)}", label, job, *args)
    except NoPredictions as exc:
        st.info(str(exc))
    except FERError as exc:
        st.warning(f"{entry.name}: {exc}")
    except Exception as exc:  # an unexpected failure stays in this column; the page goes on
        st.error(f"{entry.name}: could not predict ({type(exc).__name__}: {exc})")
    return None


# ----------------------------------------------------------------------------- the dataset, only when needed

def dataset_input(entries: list[Entry]):
    """A dataset path field; returns a function giving the usable path, or None after saying why."""
    candidates = [chosen_path(), os.environ.get("FER_DATA"), *(e.data for e in entries if e.data), str(data_dir())]
    default = next((c for c in candidates if c and Path(c).exists()), "")
    path = st.text_input("Dataset for per-image views and ensembles", value=default, key="compare_data",
                         placeholder="path to FER2013 (Kaggle zip or folder, or fer2013.csv)")

    def resolve() -> str | None:
        try:
            source = str(resolve_data_path(path or None))
            dataset_at(source)
            st.session_state["_compare_dataset"] = source  # whose cached predictions the significance test may use
            return source
        except FERError as exc:
            st.warning(f"The dataset is needed here: {exc}")
        except Exception as exc:  # an unexpected reader failure: a message on the page, not a traceback
            st.error(f"Could not load the dataset at {path}: {type(exc).__name__}: {exc}")
        return None
    return resolve


# ----------------------------------------------------------------------------- ensembles

def ensemble_section(entries: list[Entry], data_box) -> None:
    st.subheader("Ensemble")
    st.caption("Average the class probabilities of several models, evaluated on PublicTest and PrivateTest. Cards "
               "with stored per-image predictions need neither checkpoint nor dataset; a saved ensemble needs "
               "every member's checkpoint.")
    usable = {e.key: e for e in entries if e.checkpoint is not None or e.stored is not None}
    if len(usable) < 2:
        st.info("An ensemble needs at least two models with checkpoints or stored per-image predictions "
                "(finished runs, shipped models or reference cards).")
        return
    members_col, views_col = st.columns([3, 1])
    keys = members_col.multiselect("Members", list(usable), key="ens_members",
                                   format_func=lambda k: f"{usable[k].name} · {usable[k].arch}")
    views = views_col.number_input("TTA views", 2, MAX_VIEWS, DEFAULT_VIEWS, key="ens_views",
                                   help="for members predicted with their checkpoint; a card's stored TTA "
                                        "predictions use the card's own views")
    if st.button("Evaluate ensemble", key="ens_eval", disabled=len(keys) < 2):
        st.session_state["ens_request"] = (keys, int(views))
    if "ens_request" in st.session_state:
        request_keys, request_views = st.session_state["ens_request"]
        members = [usable[k] for k in request_keys if k in usable]
        needs_data = len(members) >= 2 and any(m.stored is None for m in members)
        dataset_path = data_box() if needs_data else None
        possible = len(members) >= 2 and (dataset_path is not None or not needs_data)
        outcome = evaluate_ensemble(members, dataset_path, request_views) if possible else None
        if outcome is not None or not possible:  # finished, failed or impossible: the request is over
            del st.session_state["ens_request"]
        if outcome:
            st.rerun()  # so the table and the model picker above include it
    if "ensemble_saved" in st.session_state:
        st.success(st.session_state.pop("ensemble_saved"))
    entry = st.session_state.get("ensemble_entry")
    if entry is None:
        return
    st.markdown(f"**{entry.name}** — it is now in the table above and can be compared like any run.")
    cols = st.columns(2)
    for col, split in zip(cols, SPLIT_NAMES):
        plain, tta = entry.report(split, False), entry.report(split, True)
        col.metric(f"{SPLIT_NAMES[split]} accuracy (TTA)", f"{tta['accuracy']:.2%}",
                   f"{100 * (tta['accuracy'] - plain['accuracy']):+.2f} points from TTA")
    st.plotly_chart(confusion_figure(entry.report("test", True), False, "PrivateTest, TTA"),
                    width="stretch", key="ens_cm")
    members = st.session_state["ensemble_members"]
    without_weights = [m["name"] for m in members if not m.get("checkpoint")]
    if without_weights:
        st.caption(f"Evaluated from stored predictions; it cannot be saved as a model, because "
                   f"{', '.join(without_weights)} ship{'s' if len(without_weights) == 1 else ''} no checkpoint.")
        return
    name_col, save_col = st.columns([3, 1])
    name = name_col.text_input("Save as model", key="ens_name", placeholder="e.g. vgg-ensemble")
    if save_col.button("Save ensemble", key="ens_save", disabled=not name.strip()):
        try:
            path = save_ensemble(name.strip(), members, entry.reports, entry.tta_views or DEFAULT_VIEWS, models_dir(),
                                 predictions=entry.stored)
        except FERError as exc:
            st.error(str(exc))
            return
        except OSError as exc:
            st.error(f"Could not save the ensemble: {exc}")
            return
        # the saved card replaces the unsaved entry in the table and the pickers
        st.session_state["ensemble_saved"] = f"Saved {path}: the Predict page can use it."
        del st.session_state["ensemble_entry"]
        st.rerun()


def evaluate_ensemble(members: list[Entry], dataset_path: str | None, views: int) -> bool | None:
    """True once the ensemble's metrics are in the session, False when it failed, None while it runs."""
    dataset = dataset_at(dataset_path) if dataset_path else None
    sources = [m.stored if m.stored is not None else m.checkpoint for m in members]
    try:
        # a member being trained changes its checkpoint: its version is part of the key
        key = f"ensemble:{views}:" + "+".join(m.key if m.stored is not None else f"{m.key}@{file_identity(m.checkpoint)}"
                                              for m in members) + (f"@{dataset_version(dataset_path)}" if dataset else "")
        outcome = run_in_background(key, "Evaluating the ensemble (member predictions are cached)", ensemble_metrics,
                                    sources, dataset, views)
    except FERError as exc:
        st.error(f"The ensemble could not be evaluated: {exc}")
        return False
    except Exception as exc:  # an unexpected failure is reported; the page goes on
        st.error(f"The ensemble could not be evaluated ({type(exc).__name__}: {exc})")
        return False
    if outcome is None:
        return None
    metrics, averaged = outcome
    st.session_state["ensemble_entry"] = unsaved_ensemble(members, metrics, averaged, views)
    st.session_state["ensemble_members"] = ensemble_members(members)
    return True


# ----------------------------------------------------------------------------- hyperparameter studies

def studies_section() -> None:
    st.subheader("Hyperparameter studies")
    storage = default_storage(runs_dir(), create=False)
    other = st.toggle("Another storage", key="study_other_storage",
                      help="a study in a shared database, e.g. postgresql://user:password@host/db")
    if other:
        storage = st.text_input("Storage URL", key="study_storage", placeholder="postgresql://…").strip() or storage
    names = study_names(storage)
    if not names:
        st.info("No study yet: start one on the Train page (Hyperparameter study) or with "
                "`python -m fer_core tune`. Its trials are also runs: the table above groups them by the study's name.")
        return
    name = st.selectbox("Study", names, key="study_pick")
    study = load_study(name, storage)
    table = trials_table(study)
    states = table["state"].value_counts().to_dict() if len(table) else {}
    st.caption(f"{len(table)} trials: " + ", ".join(f"{n} {s}" for s, n in states.items())
               + ". The objective is each trial's best PublicTest accuracy; PrivateTest is never used.")
    st.dataframe(table, hide_index=True, width="stretch")
    for col, (title, figure) in zip(two_per_row(4), study_figures(study).items()):
        with col:
            st.markdown(f"**{title}**")
            if isinstance(figure, str):
                st.caption(figure)
            else:
                st.plotly_chart(figure, width="stretch", key=f"study:{title}")


# ----------------------------------------------------------------------------- real photos

def real_photos_section(entries: list[Entry]) -> None:
    """The whole pipeline on real photos, as the cards record it (evaluate --photos --record)."""
    st.subheader("On real photos")
    found = [(e, r) for e in entries for r in real_photo_rows(e.name, e.real_photos)]
    if not found:
        st.info("No real-photo figures in the model cards yet. `python -m fer_core evaluate --photos DIR --checkpoint "
                "models/NAME.pt --record` (with --tta, --stress) keeps them in the card: whole photos in, the face found, "
                "framed as FER2013 and labelled, a photo without a face counted wrong.")
        return
    st.caption("Whole photos in, as users give them: 'right %' counts every photo (no face found = wrong), 'right with "
               "a face %' only those where a face was found. The stress copy gives each photo one hard case (a tight "
               "crop, a small or tilted face, grayscale, dark, JPEG quality 20).")
    st.dataframe(pd.DataFrame([r for _, r in found]), hide_index=True, width="stretch")
    labels = [f"{r['model']} · {r['photos']} ({r['copy']}) · TTA {r['TTA']}" for _, r in found]
    chosen = st.selectbox("Confusion matrix of", labels, key="photo_confusion")
    entry, row = found[labels.index(chosen)]
    figures = entry.real_photos[row["photos"]][row["copy"]]["tta" if row["TTA"] != "off" else "plain"]
    try:
        st.plotly_chart(photo_confusion_figure(figures, chosen), key="photo_confusion_chart")
    except (KeyError, TypeError, ValueError):
        st.info(f"{entry.name}'s card holds no readable confusion matrix for this row.")
    if figures.get("by_stress"):
        st.dataframe(pd.DataFrame([{"stress": k, "faces found %": round(100 * v["faces_found"], 1),
                                    "right %": round(100 * v["accuracy"], 1)} for k, v in figures["by_stress"].items()]),
                     hide_index=True)


def render() -> None:
    """The Compare page (pages/compare.py runs it)."""
    st.title("Compare")
    entries = load_entries()
    overview(entries)
    st.divider()
    st.subheader("Side by side")
    data_box = dataset_input(entries)
    chosen = pick(entries)
    if not chosen:
        st.info("Choose up to 4 models above to see them side by side.")
    else:
        if len(chosen) == 1:
            st.caption("Add a second model above to compare.")
        side_by_side(chosen, data_box)
    st.divider()
    real_photos_section(entries)
    st.divider()
    ensemble_section(entries, data_box)
    st.divider()
    studies_section()

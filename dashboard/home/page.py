"""The Home page: where a new user stands — dataset, default model, compute device, latest runs."""
from __future__ import annotations

import os

import pandas as pd
import streamlit as st
import torch

from dashboard.shared.data_access import SESSION_KEY, chosen_path, current_dataset, missing_dataset_reason
from dashboard.shared.links import page_link
from fer_core.cards import headline, load_cards
from fer_core.data import save_upload, upload_target
from fer_core.runs import Registry
from fer_core.errors import FERError
from fer_core.paths import data_dir


def render_home() -> None:
    st.title("FER workbench")
    st.caption("Facial emotion recognition on FER2013: explore the data, train and compare models, "
               "and recognise emotions in photos, videos and your webcam.")
    left, right = st.columns([3, 2])
    with left:
        dataset_panel()
    with right:
        model_panel()
        device_panel()
    latest_runs_panel()


def dataset_panel() -> None:
    st.subheader("Dataset")
    dataset, problem = current_dataset()
    if dataset is not None:
        st.success(f"**FER2013 found** at `{dataset.source}` ({dataset.format}): **{len(dataset):,} images** — "
                   f"{len(dataset['train']):,} train, {len(dataset['val']):,} val (PublicTest), "
                   f"{len(dataset['test']):,} test (PrivateTest).")
        if dataset.problems:
            st.warning(f"{len(dataset.problems)} images or rows were skipped or resized; see the Dataset page.")
        page_link("dataset", "Explore the dataset and its health", "🗂️")
    else:
        st.error(f"**No dataset yet.** {missing_dataset_reason(problem)}")
    with st.expander("Get FER2013" if dataset is None else "Use another copy of FER2013", expanded=dataset is None):
        st.markdown("Download `archive.zip` from [Kaggle's FER2013](https://www.kaggle.com/datasets/msambare/fer2013), "
                    f"then upload it here (it is kept as `{upload_target()}`), give its path, or start the "
                    "dashboard with `FER_DATA=/path/to/archive.zip`. The extracted folder and the original "
                    "`fer2013.csv` work too.")
        uploaded = st.file_uploader("Kaggle's archive.zip", type=["zip"])
        replace = True
        if upload_target().exists():  # a working dataset is never replaced without asking
            replace = st.checkbox(f"Replace the dataset already at `{upload_target()}`", key="upload_replace")
        if uploaded is not None and st.button("Use this upload", type="primary", disabled=not replace):
            with st.spinner("Checking the archive…"):
                try:
                    target = save_upload(uploaded, replace=replace)
                except FERError as exc:
                    st.error(f"Not used: {exc}")
                else:
                    st.session_state.pop(SESSION_KEY, None)
                    st.success(f"Saved as {target}.")
                    st.rerun()
        path = st.text_input("…or a path on this machine (zip, folder or fer2013.csv)", value=chosen_path() or "",
                             placeholder=os.environ.get("FER_DATA", str(data_dir())))
        if st.button("Use this path"):
            st.session_state[SESSION_KEY] = path.strip() or None
            st.rerun()


def model_panel() -> None:
    st.subheader("Default model")
    cards = {c["name"]: c for c in load_cards()}
    card = cards.get("default")
    if card is None:
        st.info("No default model shipped yet: train one on the Train page, then "
                "`python -m fer_core ship runs/RUN --name default`.")
        return
    h = headline(card)
    st.metric(f"{card['arch']} · PrivateTest accuracy (TTA, {card['tta_views']} views)",
              f"{100 * h['test_accuracy_tta']:.2f}%", help="FER2013 PrivateTest, 3,589 images")
    st.caption(f"{100 * h['test_accuracy']:.2f}% without TTA · macro-F1 {h['test_macro_f1']:.3f} · "
               f"trained {card['epochs_trained']} epochs on {card['hardware']}")


def device_panel() -> None:
    st.subheader("Compute")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            st.write(f"GPU {i}: **{props.name}**, {props.total_memory / 2**30:.0f} GiB")
    else:
        from fer_core.training import training_threads
        threads, training = torch.get_num_threads(), training_threads()
        st.write(f"**CPU** only: training jobs use {training} thread{'s' if training != 1 else ''} "
                 f"(the dashboard itself {threads}, leaving the rest to your browser). Training works but is slow; "
                 "a GPU is used automatically when PyTorch sees one.")


def latest_runs_panel() -> None:
    st.subheader("Latest runs")
    runs = Registry().list()[:5]
    if not runs:
        st.caption("No training runs yet.")
        return
    pct = lambda v: None if v is None else round(100 * v, 2)  # noqa: E731
    st.dataframe(pd.DataFrame([{"run": r.id, "architecture": r.arch, "state": r.state,
                                "epochs": f"{r.epochs_done}/{r.epochs}", "best val %": pct(r.best_val_accuracy),
                                "test % (TTA)": pct(r.test_accuracy_tta)} for r in runs]),
                 hide_index=True, width="stretch")
    page_link("train", "Open Train", "🏋️")

"""Charts and image grids of the Dataset page. Heavy numbers are cached per dataset source."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from fer_core.data import FER2013, AuditResult, CrowdComparison, audit_dataset, compare_with_crowd, find_votes_file
from fer_core.training import class_weights
from fer_core.labels import EMOTION_COLORS, EMOTIONS

SPLIT_NAMES = {"train": "train (Training)", "val": "val (PublicTest)", "test": "test (PrivateTest)"}


def counts_frame(report: dict) -> pd.DataFrame:
    rows = [{"split": SPLIT_NAMES[s], "emotion": e, "images": r["counts"][e], "percent": r["percent"][e]}
            for s, r in report["splits"].items() for e in EMOTIONS]
    return pd.DataFrame(rows)


def counts_chart(frame: pd.DataFrame) -> go.Figure:
    fig = px.bar(frame, x="emotion", y="images", color="split", barmode="group", text="percent",
                 hover_data={"percent": ":.1f"}, category_orders={"emotion": list(EMOTIONS)},
                 color_discrete_sequence=["#4c6ef5", "#74c0fc", "#f08c00"])
    fig.update_traces(texttemplate="%{text:.1f}%", textposition="outside", cliponaxis=False)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend_title_text="")
    return fig


BALANCING_FORMATS = {"train images": "{:,}", "weighted loss: class weight": "{:.3f}",
                     "oversampling: draws per image": "{:.2f}", "undersampling: share kept per epoch": "{:.3f}"}


def balancing_table(train_counts: np.ndarray) -> pd.DataFrame:
    """What each balancing method would apply to each class, beside the counts (show with BALANCING_FORMATS)."""
    return pd.DataFrame({
        "emotion": list(EMOTIONS),
        "train images": train_counts,
        "weighted loss: class weight": class_weights(train_counts, "weighted"),
        "oversampling: draws per image": class_weights(train_counts, "oversample"),
        "undersampling: share kept per epoch": class_weights(train_counts, "undersample"),
    })


@st.cache_data(show_spinner=False, max_entries=4)
def mean_faces(_dataset: FER2013, source: str) -> np.ndarray:
    """(7, 48, 48) mean training image per emotion."""
    train = _dataset["train"]
    return np.stack([train.images[train.labels == c].mean(0) if (train.labels == c).any()
                     else np.zeros((48, 48)) for c in range(len(EMOTIONS))]).astype(np.uint8)


@st.cache_data(show_spinner=False, max_entries=4)
def intensity_histograms(_dataset: FER2013, source: str) -> pd.DataFrame:
    """Share of pixels at each grey level, per split."""
    rows = []
    for name, split in _dataset.splits.items():
        counts = np.bincount(split.images.ravel(), minlength=256)
        share = counts / max(counts.sum(), 1)
        rows += [{"split": SPLIT_NAMES[name], "grey level": g, "share of pixels": s} for g, s in enumerate(share)]
    return pd.DataFrame(rows)


def histogram_chart(frame: pd.DataFrame) -> go.Figure:
    fig = px.line(frame, x="grey level", y="share of pixels", color="split",
                  color_discrete_sequence=["#4c6ef5", "#74c0fc", "#f08c00"])
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend_title_text="")
    return fig


def sample_strip(dataset: FER2013, label: int, n: int, seed: int) -> np.ndarray | None:
    """n random training faces of one emotion side by side, upscaled 2x for the screen."""
    train = dataset["train"]
    idx = np.flatnonzero(train.labels == label)
    if not len(idx):
        return None
    pick = np.random.default_rng(seed).choice(idx, size=min(n, len(idx)), replace=False)
    strip = np.concatenate([np.pad(train.images[i], 1, constant_values=255) for i in pick], axis=1)
    return np.kron(strip, np.ones((2, 2), np.uint8))


def emotion_caption(label: int) -> str:
    color = EMOTION_COLORS[EMOTIONS[label]]
    return f"<span style='color:{color};font-weight:600'>{EMOTIONS[label]}</span>"


@st.cache_data(show_spinner="Auditing every image (the first time takes up to half a minute)…", max_entries=2)
def cached_audit(_dataset: FER2013, source: str) -> AuditResult:
    return audit_dataset(_dataset)


def thumbnails(dataset: FER2013, ids: list[str]) -> list[np.ndarray]:
    """The images of the given ids (any split), upscaled for display."""
    found = []
    for split in dataset.splits.values():
        positions = {i: k for k, i in enumerate(split.ids)}
        found += [np.kron(split.images[positions[i]], np.ones((2, 2), np.uint8)) for i in ids if i in positions]
    return found


NO_MAJORITY = "no majority"


def crowd_comparison(dataset: FER2013, source: str) -> CrowdComparison:
    """FER2013's labels beside the crowd's, cached per dataset and votes file (FERError when there is none)."""
    votes = find_votes_file()
    return _crowd_comparison(dataset, source, str(votes.resolve()), votes.stat().st_mtime_ns)


@st.cache_data(show_spinner="Reading FER+'s votes…", max_entries=2)
def _crowd_comparison(_dataset: FER2013, source: str, votes: str, changed: int) -> CrowdComparison:
    return compare_with_crowd(_dataset, votes)


def agreement_figure(comparison: CrowdComparison) -> go.Figure:
    """Rows FER2013's label, columns the crowd's majority (or none): each cell's share of its row."""
    columns = [*EMOTIONS, NO_MAJORITY]
    crowd = np.where(comparison.majority >= 0, comparison.majority, len(EMOTIONS))
    counts = np.zeros((len(EMOTIONS), len(columns)))
    np.add.at(counts, (comparison.labels, crowd), 1)
    share = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=share, x=columns, y=list(EMOTIONS), colorscale="Blues", showscale=False,
                               text=[[f"{100 * v:.0f}%" for v in row] for row in share], texttemplate="%{text}",
                               customdata=counts,
                               hovertemplate="FER2013 %{y}, crowd %{x}: %{customdata:.0f} images<extra></extra>"))
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="the crowd's majority (FER+)",
                      yaxis_title="FER2013's label", yaxis_autorange="reversed")
    return fig


def disagreement_samples(comparison: CrowdComparison, given: str, crowd: str, n: int) -> list[int]:
    """Up to n images (positions in `comparison`) that FER2013 labels `given` and the crowd `crowd`."""
    wanted = -1 if crowd == NO_MAJORITY else EMOTIONS.index(crowd)
    cell = np.flatnonzero((comparison.labels == EMOTIONS.index(given)) & (comparison.majority == wanted))
    return list(np.random.default_rng(0).permutation(cell)[:n])

"""Plotly figures of the Compare page: confusion matrices, per-class bars, learning curves, TTA gain."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.shared.charts import PALETTE
from fer_core.labels import EMOTIONS



def confusion_figure(report: dict, normalised: bool, title: str = "") -> go.Figure:
    """Heatmap, rows true and columns predicted; hover shows the count and its share of the row."""
    cm = np.asarray(report["confusion_matrix"], dtype=float)
    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    z = share if normalised else cm
    text = [[f"{100 * share[i, j]:.0f}%" if normalised else f"{int(cm[i, j])}" for j in range(len(EMOTIONS))]
            for i in range(len(EMOTIONS))]
    n = len(EMOTIONS)
    fig = go.Figure(go.Heatmap(z=z, x=list(EMOTIONS), y=list(EMOTIONS), colorscale="Blues", showscale=False,
                               text=text, texttemplate="%{text}", hoverinfo="skip"))
    # Invisible markers on the cell centres carry the hover text and make cells clickable:
    # Streamlit reports clicks on scatter points, not on heatmap cells.
    fig.add_trace(go.Scatter(
        x=[EMOTIONS[j] for i in range(n) for j in range(n)], y=[EMOTIONS[i] for i in range(n) for j in range(n)],
        mode="markers", marker=dict(symbol="square", size=34, opacity=0.01), showlegend=False,
        customdata=[[cm[i, j], 100 * share[i, j]] for i in range(n) for j in range(n)],
        hovertemplate="true %{y}, predicted %{x}<br>%{customdata[0]:.0f} images "
                      "(%{customdata[1]:.1f}% of %{y})<extra></extra>"))
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      clickmode="event+select")
    return fig


def per_class_figure(reports: dict[str, dict]) -> go.Figure:
    """Precision, recall and F1 per emotion, one bar group per model."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("precision", "recall", "F1"), shared_yaxes=True)
    for i, (name, report) in enumerate(reports.items()):
        for col, metric in enumerate(("precision", "recall", "f1"), start=1):
            fig.add_trace(go.Bar(x=list(EMOTIONS), y=[report["per_class"][e][metric] for e in EMOTIONS],
                                 name=name, legendgroup=name, showlegend=col == 1,
                                 marker_color=PALETTE[i % len(PALETTE)]), row=1, col=col)
    fig.update_layout(barmode="group", height=360, margin=dict(l=10, r=10, t=40, b=10), yaxis_range=[0, 1])
    return fig


def tta_gain_figure(gains: dict[str, dict[str, float]]) -> go.Figure:
    """Accuracy points gained by TTA, per model, on val and test."""
    fig = go.Figure()
    for split, label in (("val", "PublicTest (val)"), ("test", "PrivateTest (test)")):
        names = [n for n in gains if split in gains[n]]
        fig.add_trace(go.Bar(x=names, y=[gains[n][split] for n in names], name=label,
                             texttemplate="%{y:+.2f}", hovertemplate="%{x}: %{y:+.2f} points<extra></extra>"))
    fig.update_layout(barmode="group", height=300, yaxis_title="accuracy points (TTA - plain)",
                      margin=dict(l=10, r=10, t=30, b=10))
    return fig


def reliability_figure(curves: dict[str, list[dict]]) -> go.Figure:
    """Reliability diagram: accuracy against mean confidence per confidence bin, one line per model (and per
    model once calibrated); on the diagonal, a confidence means what it says."""
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                               line=dict(color="#999", dash="dot")))
    for i, (name, rows) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(
            x=[r["confidence"] for r in rows], y=[r["accuracy"] for r in rows], mode="lines+markers", name=name,
            marker=dict(size=[max(5, min(18, r["count"] ** 0.5 / 2)) for r in rows]),
            line=dict(color=PALETTE[(i // 2) % len(PALETTE)], dash="dash" if name.endswith("(raw)") else "solid"),
            customdata=[r["count"] for r in rows],
            hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{customdata} images<extra>" + name + "</extra>"))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="confidence (mean in the bin)",
                      yaxis_title="accuracy", xaxis_range=[0, 1], yaxis_range=[0, 1])
    return fig


def photo_confusion_figure(figures: dict, title: str = "") -> go.Figure:
    """A real-photo confusion matrix (evaluate --photos): rows the true emotion, columns the prediction and a last
    column for photos where no face was found; cells show the share of the row."""
    cm = np.asarray(figures["confusion_matrix"], dtype=float)
    rows = cm.sum(1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    columns = figures.get("columns") or [*EMOTIONS, "no face"]
    text = [[f"{100 * share[i, j]:.0f}%" for j in range(cm.shape[1])] for i in range(cm.shape[0])]
    fig = go.Figure(go.Heatmap(z=share, x=columns, y=list(EMOTIONS), colorscale="Blues", showscale=False, text=text,
                               texttemplate="%{text}", customdata=cm,
                               hovertemplate="true %{y}, predicted %{x}: %{customdata:.0f} photos<extra></extra>"))
    fig.update_layout(title=title, height=380, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed")
    return fig

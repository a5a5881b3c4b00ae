"""Charts more than one page shows: the learning curves (Train's runs, Compare's side by side)."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00"]


def learning_curves_figure(curves: dict[str, list[dict]]) -> go.Figure:
    """Loss and accuracy per epoch overlaid, train dashed and val solid, one colour per model."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    for i, (name, curve) in enumerate(curves.items()):
        epochs = [m.get("epoch") for m in curve]
        for col, key in ((1, "loss"), (2, "accuracy")):
            for split, dash in (("train", "dash"), ("val", "solid")):
                values = [m.get(f"{split}_{key}") for m in curve]
                fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=f"{name} {split}",
                                         legendgroup=name, line=dict(color=PALETTE[i % len(PALETTE)], dash=dash),
                                         showlegend=col == 1), row=1, col=col)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="epoch")
    return fig

"""The Live page's emotion-over-time chart, kept light however long the stream runs."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from fer_core.labels import EMOTION_COLORS, EMOTIONS


def history_figure(history: list[dict], max_points: int = 240) -> go.Figure | None:
    """The first tracked face's probabilities over time; None before the first face.

    A long stream holds thousands of rows: they are averaged into at most `max_points` time bins, so the chart
    the browser redraws stays small (it shares the CPU with the video codecs)."""
    if not history:
        return None
    frame = pd.DataFrame(history)
    first = frame[frame["face"] == frame["face"].min()]
    if len(first) > max_points:
        bins = pd.cut(first["time_s"], max_points, labels=False)
        first = first.groupby(bins)[["time_s", *EMOTIONS]].mean()
    long = first.melt(id_vars=["time_s"], value_vars=list(EMOTIONS), var_name="emotion", value_name="probability")
    fig = px.line(long, x="time_s", y="probability", color="emotion", color_discrete_map=EMOTION_COLORS,
                  labels={"time_s": "seconds since start"})
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 10}, yaxis_range=[0, 1])
    return fig

"""How a training run is shown: progress with ETA, learning curves, the log tail."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fer_core.runs import Run, log_tail, read_metrics

STATE_BADGES = {"queued": "⏳ queued", "running": "🏃 running", "finished": "✅ finished", "failed": "❌ failed",
                "cancelled": "⏹️ cancelled", "interrupted": "⚠️ interrupted"}


@dataclass
class Progress:
    fraction: float
    elapsed_s: float | None
    eta_s: float | None
    images_per_s: float | None


def run_progress(run: Run, metrics: list[dict]) -> Progress:
    """Share of epochs done, time since start, and ETA from the mean epoch time so far."""
    epochs = run.epochs or 1
    fraction = min(len(metrics) / epochs, 1.0)
    elapsed = None
    if run.started:
        end = datetime.fromisoformat(run.ended) if run.ended else datetime.now(timezone.utc)
        elapsed = (end - datetime.fromisoformat(run.started)).total_seconds()
    eta = None
    if metrics and run.state == "running":
        per_epoch = sum(m["seconds"] for m in metrics) / len(metrics)
        eta = per_epoch * (epochs - len(metrics))
    speed = metrics[-1]["images_per_s"] if metrics else None
    return Progress(fraction, elapsed, eta, speed)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def learning_curves(runs_metrics: dict[str, list[dict]]) -> go.Figure:
    """Loss and accuracy per epoch, train dashed and val solid, one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    palette = ["#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#1098ad", "#f08c00"]
    for i, (name, metrics) in enumerate(runs_metrics.items()):
        color = palette[i % len(palette)]
        epochs = [m["epoch"] for m in metrics]
        for col, key in ((1, "loss"), (2, "accuracy")):
            for split, dash in (("train", "dash"), ("val", "solid")):
                fig.add_trace(go.Scatter(
                    x=epochs, y=[m[f"{split}_{key}"] for m in metrics], mode="lines+markers",
                    name=f"{name} {split}", legendgroup=name, line={"color": color, "dash": dash},
                    showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, legend={"orientation": "h", "y": -0.25})
    return fig


def run_metrics(run: Run) -> list[dict]:
    return read_metrics(Path(run.run_dir) / "metrics.jsonl")


def run_log_tail(run: Run, lines: int = 12) -> str:
    """The end of a job's log, one line per line (progress-bar redraws collapsed)."""
    return log_tail(Path(run.run_dir) / "train.log", lines).replace(" | ", "\n")

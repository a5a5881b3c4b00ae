"""How a training run is shown: progress with ETA and the log tail (curves: compare_charts)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from fer_core.rundir import RunFolder
from fer_core.runs import Run

STATE_BADGES = {"queued": "⏳ queued", "running": "🏃 running", "finished": "✅ finished", "failed": "❌ failed",
                "cancelled": "⏹️ cancelled", "pruned": "✂️ pruned", "interrupted": "⚠️ interrupted",
                "damaged": "🩹 damaged"}


@dataclass
class Progress:
    fraction: float
    elapsed_s: float | None
    eta_s: float | None
    images_per_s: float | None
    evaluation: float | None = None  # share of the final evaluation done, while the run is in that phase


def run_progress(run: Run, metrics: list[dict], status: dict | None = None) -> Progress:
    """Share of the training done (within the current epoch too, from status.json's `epoch_batches`), time since
    start, and ETA from the epochs so far, or, during the first epoch, from its batches so far; after the last
    epoch, the share of the final evaluation done (status.json's `evaluation_views`)."""
    epochs = run.epochs or 1
    done = float(len(metrics))
    seconds_per_epoch = sum(m["seconds"] for m in metrics) / len(metrics) if metrics else None
    current = (status or {}).get("epoch_batches")
    if run.state == "running" and isinstance(current, list) and len(current) == 4 and current[0] == len(metrics) + 1:
        _, batches_done, batches, seconds = current
        if batches and batches_done:
            done += batches_done / batches
            seconds_per_epoch = seconds_per_epoch or seconds * batches / batches_done
    elapsed = None
    if run.started:
        end = datetime.fromisoformat(run.ended) if run.ended else datetime.now(timezone.utc)
        elapsed = (end - datetime.fromisoformat(run.started)).total_seconds()
    eta = seconds_per_epoch * max(epochs - done, 0.0) if seconds_per_epoch and run.state == "running" else None
    speed = metrics[-1]["images_per_s"] if metrics else None
    evaluation = None
    if run.state == "running" and (status or {}).get("phase") == "evaluating":
        views = status.get("evaluation_views")
        valid = isinstance(views, list) and len(views) == 2 and views[1]
        evaluation = min(views[0] / views[1], 1.0) if valid else 0.0
    return Progress(min(done / epochs, 1.0), elapsed, eta, speed, evaluation)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def run_metrics(run: Run) -> list[dict]:
    return RunFolder(run.run_dir).metrics()[0] if run.run_dir else []


def run_log_tail(run: Run, lines: int = 12) -> str:
    """The end of a job's log, one line per line (progress-bar redraws collapsed)."""
    if not run.run_dir:
        return ""
    return RunFolder(run.run_dir).log_tail(lines).replace(" | ", "\n")

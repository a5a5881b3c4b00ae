"""The models a page can predict with: the shipped default, other shipped models and ensembles, then ("more
models") exported ONNX models and finished runs.

`model_choices()` is the one place that lists them, saved ensembles (models/<name>.json) included.
"""
from __future__ import annotations

from pathlib import Path

from fer_core.errors import FERError
from fer_core.models import ModelCard
from fer_core.paths import default_checkpoint
from fer_core.paths import models_dir as default_models_dir
from fer_core.paths import runs_dir as default_runs_dir
from fer_core.rundir import RunFolder
from fer_core.runs import Registry


def model_choices(models_dir: str | Path | None = None, runs_dir: str | Path | None = None, more: bool = True
                  ) -> list[tuple[str, Path]]:
    """(label shown to the user, checkpoint path) pairs, the default model first when it exists; the shipped
    models and ensembles only, unless `more` (ONNX files and finished runs too)."""
    # $FER_MODELS_DIR and $FER_RUNS_DIR, else models/ and runs/ in the project
    models_dir, runs_dir = Path(models_dir or default_models_dir()), Path(runs_dir or default_runs_dir())
    choices: list[tuple[str, Path]] = []
    default = models_dir / default_checkpoint().name
    if default.is_file():
        choices.append((f"Default model{_figures_label(_card_figures(default.with_suffix('.json')))}", default))
    shipped = [(f"Shipped model: {path.stem}", _card_figures(path.with_suffix(".json")), path)
               for path in sorted(models_dir.glob("*.pt")) if path != default]
    from fer_core.models import list_ensembles
    ensembles = [(f"Ensemble: {name}", _card_figures(card), card) for name, card in list_ensembles(models_dir)]
    for group in (shipped, ensembles):  # best PrivateTest (TTA) first, as Compare lists them
        for label, figures, path in sorted(group, key=lambda item: -item[1][0]):
            choices.append((f"{label}{_figures_label(figures)}", path))
    if not more:
        return choices
    for path in sorted(models_dir.glob("*.onnx")):  # `python -m fer_core export ... --onnx models/NAME.onnx`
        choices.append((f"ONNX model: {path.name}", path))
    for run in sorted(Registry(runs_dir).list(), key=lambda r: r.id) if runs_dir.is_dir() else []:
        best = RunFolder(run.run_dir).best if run.run_dir else None
        if run.state == "finished" and best is not None and best.is_file():
            choices.append((f"Run: {run.id}", best))
    return choices


def _card_figures(card_path: Path) -> tuple[float, float | None]:
    """(PrivateTest accuracy with TTA, ms per face measured by `bench zoo` or None) from a model card; (0, None)
    without one."""
    try:
        card = ModelCard.read(card_path)
    except FERError:
        return 0.0, None
    return card.accuracy("test", tta=True) or 0.0, card.number("speed", "ms_per_face")


def _figures_label(figures: tuple[float, float | None]) -> str:
    """' · 65.8% PrivateTest (TTA) · 1.2 ms' (short: the picker cuts long labels), or '' without a card."""
    accuracy, ms = figures
    if not accuracy:
        return ""
    return f" · {accuracy:.1%} PrivateTest (TTA)" + (f" · {ms:.1f} ms" if ms is not None else "")

"""Hyperparameter studies as Compare shows them: Optuna's own Plotly figures and the table of trials."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def study_names(storage: str) -> list[str]:
    """The studies in `storage` (a missing SQLite file has none, and is not created by looking)."""
    import optuna
    from fer_core.tuning import storage_of
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        return []
    try:
        return sorted(optuna.get_all_study_names(storage=storage_of(storage)))
    except Exception:  # noqa: BLE001 - an unreadable storage lists nothing; the page says so
        return []


def load(name: str, storage: str):
    import optuna
    from fer_core.tuning import storage_of
    return optuna.load_study(study_name=name, storage=storage_of(storage))


def trials_table(study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"trial": t.number, "state": t.state.name.lower(),
                     "best PublicTest %": None if t.value is None else round(100 * t.value, 2),
                     "epochs": len(t.intermediate_values), **t.params,
                     "run": (t.user_attrs.get("run") or "").rsplit("/", 1)[-1]})
    return pd.DataFrame(rows)


def study_figures(study) -> dict:
    """{title: Plotly figure} of Optuna's visualisations that this study has enough trials for; a figure Optuna
    cannot draw yet (e.g. importances before two complete trials) is left out with its reason as the value."""
    from optuna import visualization as vis
    makers = {"Optimisation history": vis.plot_optimization_history,
              "PublicTest accuracy per epoch (pruned trials stop early)": vis.plot_intermediate_values,
              "Parameter importances": vis.plot_param_importances,
              "Each parameter against the objective": vis.plot_slice}
    figures = {}
    for title, make in makers.items():
        try:
            figures[title] = make(study)
        except Exception as exc:  # noqa: BLE001 - Optuna refuses a figure without enough trials; say why
            figures[title] = f"not yet: {str(exc).splitlines()[0][:200]}"
    return figures

"""Model cards, the files that describe models in models/: the card format and shipping (model_cards), saved
ensembles and their metrics (ensembles), per-image predictions beside a card (predictions), the README's results
table (results_table) and the list of runs and cards that Compare shows (catalog).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Entry": "catalog", "NoPredictions": "catalog", "RUN": "catalog", "UNSAVED_ENSEMBLE": "catalog", "all_entries": "catalog",
    "architectures_without_cards": "catalog", "ensemble_members": "catalog", "entry_views": "catalog",
    "prediction_job": "catalog", "predictions_at_hand": "catalog", "unsaved_ensemble": "catalog",
    "ensemble_metrics": "ensembles",
    "save_ensemble": "ensembles", "ENSEMBLE": "model_cards", "EXPERIMENT": "model_cards",
    "REFERENCE": "model_cards", "SHIPPED": "model_cards", "headline": "model_cards",
    "load_cards": "model_cards", "real_photo_rows": "model_cards",
})

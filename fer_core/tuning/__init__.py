"""Hyperparameter studies with Optuna: a search space over the training options, trials as run folders,
pruning by epoch, storages shared by workers (`python -m fer_core tune`).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "start_study": "launch", "parse_space": "space", "SAMPLERS": "config",
    "default_storage": "study", "PRUNERS": "trial", "storage_of": "trial",
})

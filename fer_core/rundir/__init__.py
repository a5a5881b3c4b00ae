"""The run folder: the files a training run writes (config.json, metrics.jsonl, status.json, eval.json, best.pt,
last.pt, train.log) and the trainer's lock, named and read in one place (`folder.RunFolder`). It sits below
training, which writes it, and below the registry, the cards and the tuning that read it.

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "RunFolder": "folder",
})

"""Training jobs on disk: the run folder and its files (folder), the SQLite index of runs (index), how a job
ended (reconcile), the registry that queues, cancels, resumes and deletes (registry), and the worker that starts
jobs (worker, started by launcher).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "Run": "index", "Registry": "registry",
})

"""The dataset layer: `fer2013.load_dataset` finds FER2013 (sources), decodes Kaggle's zip, its folder or
fer2013.csv (readers), caches the result (cache) and returns a `dataset.FER2013`; archives are opened with
limits (archive); the data-health audit (audit) and the test images that leak from Training (leakage).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "AuditResult": "audit", "audit_dataset": "audit",
    "FER2013": "dataset", "dataset_report": "dataset",
    "load_dataset": "fer2013", "CrowdComparison": "ferplus", "compare_with_crowd": "ferplus",
    "find_votes_file": "ferplus", "votes_text": "ferplus", "check_dataset": "sources",
    "resolve_data_path": "sources", "save_upload": "upload", "upload_target": "upload",
})

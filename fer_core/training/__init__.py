"""Training: TrainConfig, the one definition of every option (config), the loop (train), batched augmentation
(augment), mixup/cutmix (mixing), class balancing (balance), distillation (distill) and DDP (distributed).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "class_weights": "balance", "GROUPS": "config", "Option": "config", "TrainConfig": "config",
    "options": "config", "sweepable": "config", "value_type": "config",
    "expected_training": "probe", "training_threads": "probe",
})

"""Networks and model files: the architecture registry (registry), checkpoints (checkpoints), saved ensembles
(ensemble), ONNX export and runtime (onnx), the one loader for any model file (loading), and where and in which
precision a network runs (devices, precision).

Its public surface, the only names pages/ and dashboard/ may import from it, is `__all__` below
(fer_core/exports.py).
"""
from ..exports import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "ModelCard": "card",
    "available_devices": "devices", "list_ensembles": "ensemble", "file_identity": "loading",
    "load_model": "loading", "list_models": "registry",
})

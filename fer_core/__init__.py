"""fer_core: facial emotion recognition on FER2013.

The library is grouped by layer, lowest first: errors, labels and paths (shared names, errors and folders);
data and models; training and evaluation; runs (training jobs on disk); cards (the models in models/);
inference (using a model). docs/architecture.md draws the map. The names most code needs are here:

    from fer_core import EmotionRecognizer, load_model, create_model, load_dataset, TrainConfig
"""
from .errors import CheckpointError, DataError, FERError, ImageError, PretrainedWeightsError
from .labels import EMOTIONS

# Imported on first use, so `import fer_core` stays free of torch and OpenCV.
_LAZY = {
    "EmotionRecognizer": "fer_core.inference.recognizer",
    "load_model": "fer_core.models.loading",
    "create_model": "fer_core.models.registry",
    "list_models": "fer_core.models.registry",
    "load_dataset": "fer_core.data.fer2013",
    "TrainConfig": "fer_core.training.config",
}

__all__ = ["EMOTIONS", "FERError", "DataError", "CheckpointError", "ImageError", "PretrainedWeightsError", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fer_core' has no attribute {name!r}")

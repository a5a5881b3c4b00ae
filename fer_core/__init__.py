"""fer_core: facial emotion recognition on FER2013 — data, models, training, evaluation, inference."""
from .errors import CheckpointError, DataError, FERError, ImageError, PretrainedWeightsError
from .labels import EMOTIONS

__all__ = ["EMOTIONS", "FERError", "DataError", "CheckpointError", "ImageError", "PretrainedWeightsError",
           "EmotionRecognizer"]


def __getattr__(name: str):
    if name == "EmotionRecognizer":  # lazy: `import fer_core` stays free of torch and OpenCV
        from .inference import EmotionRecognizer
        return EmotionRecognizer
    raise AttributeError(f"module 'fer_core' has no attribute {name!r}")

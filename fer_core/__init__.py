"""fer_core: facial emotion recognition on FER2013 — data, models, training, evaluation, inference."""
from .errors import CheckpointError, DataError, FERError, PretrainedWeightsError
from .labels import EMOTIONS

__all__ = ["EMOTIONS", "FERError", "DataError", "CheckpointError", "PretrainedWeightsError"]

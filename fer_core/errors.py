"""Errors that reach users as one clear line (the CLI prints them; the dashboard shows them)."""


class FERError(Exception):
    """Base class: the message is complete and meant for the user."""


class DataError(FERError):
    """The dataset is missing, malformed or not FER2013."""


class CheckpointError(FERError):
    """A checkpoint file is missing, damaged or not one of ours."""


class PretrainedWeightsError(FERError):
    """Pretrained weights could not be found or downloaded."""


class ImageError(FERError):
    """An image or video file cannot be used: empty, not an image, truncated, too large, animated."""

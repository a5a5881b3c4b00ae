"""The seven FER2013 emotions, in the dataset's own index order (0..6)."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(EMOTIONS)

# One colour per emotion, used by every chart and every box drawn on a face.
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#8c564b",
    "fear": "#9467bd",
    "happy": "#f2b701",
    "sad": "#1f77b4",
    "surprise": "#ff7f0e",
    "neutral": "#7f7f7f",
}

# Folder names seen in the wild for each emotion. Kaggle's folders are sorted alphabetically,
# which is NOT the FER2013 order, so labels are always mapped by name.
_ALIASES = {
    "angry": "angry", "anger": "angry",
    "disgust": "disgust", "disgusted": "disgust",
    "fear": "fear", "fearful": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise",
    "neutral": "neutral",
}


def label_index(name: str) -> int | None:
    """FER2013 index of an emotion folder or label name, or None when it is not an emotion."""
    emotion = _ALIASES.get(name.strip().lower())
    return None if emotion is None else EMOTIONS.index(emotion)

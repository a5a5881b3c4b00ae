"""Where the project keeps things: the shipped models, the run folders, the data."""
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
DATA_DIR = PROJECT_ROOT / "data"


def runs_dir() -> Path:
    """Where run folders and the registry live: $FER_RUNS_DIR, else runs/ in the project."""
    return Path(os.environ.get("FER_RUNS_DIR") or DEFAULT_RUNS_DIR)


def models_dir() -> Path:
    """Where shipped models and their cards live: $FER_MODELS_DIR, else models/ in the project."""
    return Path(os.environ.get("FER_MODELS_DIR") or PROJECT_ROOT / "models")


def default_checkpoint() -> Path:
    """The shipped default model: default.pt in models_dir()."""
    return models_dir() / "default.pt"

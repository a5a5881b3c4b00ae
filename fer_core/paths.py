"""Where the project keeps things: the shipped models and the default run folder."""
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = PROJECT_ROOT / "models"
DEFAULT_CHECKPOINT = MODELS_DIR / "default.pt"
DEFAULT_RUNS_DIR = PROJECT_ROOT / "runs"
DATA_DIR = PROJECT_ROOT / "data"

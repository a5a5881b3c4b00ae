"""The one loader for every kind of model: a checkpoint (.pt), a saved ensemble (models/<name>.json) or an
ONNX export (.onnx); and the ONNX export of any of them.

    model = load_model("models/default.pt")          # or .json, or .onnx
    model = load_onnxruntime("models/default.pt", threads=1)   # the same network run by ONNX Runtime
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, FERError
from ..paths import atomic_write, default_cache_dir, existing_file
from .card import ModelCard
from .checkpoints import load_checkpoint, model_from_checkpoint
from .ensemble import load_ensemble, member_paths
from .onnx import OnnxModel, export_module

log = logging.getLogger(__name__)


def renamed_model(path: str | os.PathLike) -> Path:
    """`path`, or where the model it names lives now: a shipped model that was renamed keeps its old names in its
    card's "formerly" list, so `models/e80-fer_vgg_small.pt` still loads `models/no-teacher.pt`."""
    path = Path(path)
    if path.suffix not in (".pt", ".json") or path.exists() or not path.parent.is_dir():
        return path
    for card in sorted(path.parent.glob("*.json")):
        try:
            formerly = ModelCard.read(card).formerly
        except FERError:  # an unreadable or foreign .json: not a card
            continue
        if path.stem in formerly:
            return card.with_suffix(path.suffix)
    return path


def card_of(path: str | os.PathLike) -> Path:
    """Where the model card of the model file at `path` is: models/<name>.json beside it (an old name followed)."""
    return renamed_model(path).with_suffix(".json")


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """A network ready to predict, in eval mode where it is a PyTorch module."""
    path = renamed_model(path)
    suffix = path.suffix
    if suffix == ".json":
        return load_ensemble(path, device)
    if suffix == ".onnx":
        return OnnxModel(path)  # onnxruntime on the CPU, whatever `device` says
    return model_from_checkpoint(load_checkpoint(path), device)


def model_files(path: str | os.PathLike) -> list[Path]:
    """The files a model is read from: the file itself, and a saved ensemble's members (checked first)."""
    path = renamed_model(path)
    return [path, *(member_paths(path) if path.suffix == ".json" else [])]


def file_identity(path: str | os.PathLike) -> str:
    """Path, inode, size and modification time of every file of the model at `path`: changes whenever one of
    them is replaced (a re-shipped model), so caches keyed by it reload. Raises CheckpointError for a model
    that cannot be read."""
    parts = []
    what = {".json": "ensemble card", ".onnx": "ONNX model"}.get(Path(path).suffix, "checkpoint")
    for file in model_files(existing_file(renamed_model(path), what, error=CheckpointError)):
        st = file.stat()
        parts.append(f"{file.resolve()}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def export_onnx(model_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Write `model_path` (a .pt checkpoint or a saved ensemble .json) as an ONNX graph at `out_path`."""
    return export_module(load_model(model_path, "cpu"), out_path)


def model_digest(path: str | os.PathLike) -> str:
    """A name for the model's bytes (a saved ensemble's members included): what its cached exports are named by."""
    digest = hashlib.sha256()
    for file in model_files(path):  # streamed: a model file is never read into memory just to name its export
        with open(file, "rb") as fh:
            digest.update(hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()[:24]


def cached_export(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path:
    """The ONNX export of the checkpoint or saved ensemble at `path`, made once into the cache and reused."""
    onnx_path = Path(cache_dir or default_cache_dir()) / "onnx" / f"{model_digest(path)}.onnx"
    if not onnx_path.is_file():
        with atomic_write(onnx_path, suffix=".tmp.onnx") as tmp:  # the exporter wants the suffix
            export_onnx(path, tmp)
    return onnx_path


def load_onnxruntime(path: str | os.PathLike, threads: int = 1,
                     cache_dir: str | os.PathLike | None = None) -> nn.Module:
    """The model at `path` run by ONNX Runtime with its own `threads` (PyTorch's thread pool is left alone).

    Checkpoints and saved ensembles are exported once to the cache (named by the files' bytes) and reused.
    One thread keeps the live video's frame callback from competing with the browser and the video codecs
    for the 2 cores. When the export fails the PyTorch model is returned, so a model never becomes unusable
    here (models.engines, which chooses between them, raises instead)."""
    path = renamed_model(path)
    if path.suffix == ".onnx":
        return OnnxModel(path, threads)
    try:
        return OnnxModel(cached_export(path, cache_dir), threads)
    except Exception as exc:  # noqa: BLE001 - onnx/onnxscript missing or an export failure: PyTorch still works
        log.warning("ONNX Runtime path unavailable for %s (%s); using PyTorch", path, exc)
        return load_model(path)

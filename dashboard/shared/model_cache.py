"""The loaded models of every page, cached once per process and keyed by the files' identity: a model
re-shipped under the same path (a new default.pt, a replaced ensemble member) is loaded again on every page."""
from __future__ import annotations

import os

import streamlit as st
import torch

from fer_core.evaluation import DEFAULT_VIEWS
from fer_core.inference import EmotionRecognizer
from fer_core.models import file_identity, load_model


@st.cache_resource(show_spinner="Loading the model (the first time on this machine, timing its engines)…",
                   max_entries=4)
def _load(path: str, identity: str, onnxruntime_threads: int | None, engine: str | None, batch: int,
          threads: int | None) -> EmotionRecognizer:
    return EmotionRecognizer.load(path, onnxruntime_threads=onnxruntime_threads, engine=engine, batch=batch,
                                  threads=threads)


def recognizer(path: str | os.PathLike, onnxruntime_threads: int | None = None, engine: str | None = None,
               batch: int = DEFAULT_VIEWS, threads: int | None = None) -> EmotionRecognizer:
    """The model at `path`, loaded once per version of its files; raises FERError (CheckpointError) when it
    cannot be read. `engine`, `batch` and `threads` as in EmotionRecognizer.load (Live: batch 1 on 1 thread);
    `onnxruntime_threads`: ONNX Runtime on that many threads."""
    return _load(str(path), file_identity(path), onnxruntime_threads, engine, batch, threads)


@st.cache_resource(show_spinner="Loading the PyTorch network for its heat maps…", max_entries=4)
def _network(path: str, identity: str) -> torch.nn.Module:
    return load_model(path)


def network(path: str | os.PathLike) -> torch.nn.Module:
    """The PyTorch network at `path` (saliency needs its gradients, whatever engine predicts), once per version."""
    return _network(str(path), file_identity(path))

"""Which dataset the dashboard uses, loaded once per process, and what to say when there is none."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from fer_core.data import FER2013, load_dataset, resolve_data_path
from fer_core.errors import DataError

SESSION_KEY = "data_path"


def chosen_path() -> str | None:
    """The path typed on Home in this session, else None (then $FER_DATA, then data/)."""
    return st.session_state.get(SESSION_KEY) or None


def _fingerprint(source: Path) -> str:
    st_ = source.stat()
    return f"{source}:{st_.st_size}:{st_.st_mtime_ns}"


def dataset_version(path: str | os.PathLike) -> str:
    """What changes when the dataset at `path` is replaced ('' when there is none)."""
    try:
        return _fingerprint(resolve_data_path(path))
    except (DataError, OSError):
        return ""


@st.cache_resource(show_spinner="Loading FER2013 (the first time decodes every image, about 5 s)…", max_entries=2)
def _load(source: str, fingerprint: str) -> FER2013:
    return load_dataset(source)


def dataset_at(path: str | os.PathLike) -> FER2013:
    """The dataset at `path`, loaded once per version of its source (the cache every page shares); DataError."""
    source = resolve_data_path(path)
    return _load(str(source), _fingerprint(source))


def current_dataset() -> tuple[FER2013 | None, str | None]:
    """(dataset, None), or (None, a message saying what is wrong and how to fix it)."""
    try:
        return dataset_at(chosen_path()), None
    except DataError as exc:
        return None, str(exc)


def missing_dataset_reason(problem: str) -> str:
    """The reason after a "No dataset" heading, without repeating it ("No dataset. dataset not found: ...")."""
    return problem.removeprefix("dataset not found: ")


def require_dataset() -> FER2013:
    """The dataset, or a clear message and the end of this page's script."""
    dataset, problem = current_dataset()
    if dataset is None:
        st.warning(f"**No dataset.** {missing_dataset_reason(problem)}\n\n"
                   "Open **Home** to upload Kaggle's `archive.zip` or give a path.")
        st.stop()
    return dataset

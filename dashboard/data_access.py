"""Which dataset the dashboard uses, loaded once per process, and what to say when there is none."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import streamlit as st

from fer_core.data import FER2013, load_dataset, resolve_data_path
from fer_core.errors import DataError
from fer_core.paths import DATA_DIR

SESSION_KEY = "data_path"


def chosen_path() -> str | None:
    """The path typed on Home in this session, else None (then $FER_DATA, then data/)."""
    return st.session_state.get(SESSION_KEY) or None


def _fingerprint(source: Path) -> str:
    st_ = source.stat()
    return f"{source}:{st_.st_size}:{st_.st_mtime_ns}"


@st.cache_resource(show_spinner="Loading FER2013 (the first time decodes every image, about 5 s)…", max_entries=2)
def _load(source: str, fingerprint: str) -> FER2013:
    return load_dataset(source)


def current_dataset() -> tuple[FER2013 | None, str | None]:
    """(dataset, None), or (None, a message saying what is wrong and how to fix it)."""
    try:
        source = resolve_data_path(chosen_path())
        return _load(str(source), _fingerprint(source)), None
    except DataError as exc:
        return None, str(exc)


def require_dataset() -> FER2013:
    """The dataset, or a clear message and the end of this page's script."""
    dataset, problem = current_dataset()
    if dataset is None:
        st.warning(f"**No dataset.** {problem}\n\nOpen **Home** to upload Kaggle's `archive.zip` or give a path.")
        st.stop()
    return dataset


def save_upload(uploaded) -> Path:
    """Check that an uploaded file is FER2013 and keep it as data/fer2013.zip; raise DataError otherwise."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=DATA_DIR, suffix=".zip", delete=False) as tmp:
        shutil.copyfileobj(uploaded, tmp)
    tmp_path = Path(tmp.name)
    try:
        dataset = load_dataset(tmp_path, use_cache=False)
        if len(dataset["train"]) == 0:
            raise DataError("the archive has no training images")
    except DataError:
        tmp_path.unlink(missing_ok=True)
        raise
    target = DATA_DIR / "fer2013.zip"
    os.replace(tmp_path, target)
    return target

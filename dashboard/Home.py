"""Entry point: `streamlit run dashboard/Home.py`. One page per script in the top-level pages/ folder."""
import os
from pathlib import Path

import streamlit as st
import torch

from dashboard.overview import render_home

ROOT = Path(__file__).resolve().parents[1]
# The dashboard shares the machine with the browser showing it (and, on Live, with the video codecs): PyTorch's
# spinning thread pool on every core starved them, and Live processed 16 frames/s instead of 21 on 2 cores
# (README, Speed). Training jobs run in their own processes and keep every core.
torch.set_num_threads(int(os.environ.get("FER_DASHBOARD_THREADS", max(1, (os.cpu_count() or 2) // 2))))

st.set_page_config(page_title="FER workbench", page_icon="🙂", layout="wide")
PAGES = [
    st.Page(render_home, title="Home", icon="🏠", default=True),
    st.Page(ROOT / "pages" / "dataset.py", title="Dataset", icon="🗂️"),
    st.Page(ROOT / "pages" / "train.py", title="Train", icon="🏋️"),
    st.Page(ROOT / "pages" / "compare.py", title="Compare", icon="📊"),
    st.Page(ROOT / "pages" / "predict.py", title="Predict", icon="🖼️"),
    st.Page(ROOT / "pages" / "live.py", title="Live", icon="🎥"),
]
st.navigation(PAGES).run()

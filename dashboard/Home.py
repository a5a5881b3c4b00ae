"""Entry point: `streamlit run dashboard/Home.py`. One page per script in the top-level pages/ folder."""
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parents[1]

st.set_page_config(page_title="FER workbench", page_icon="🙂", layout="wide")
# The first load imports PyTorch and OpenCV (seconds on a small CPU): say so instead of a blank page.
with st.spinner("Starting the workbench: loading PyTorch and OpenCV (the first time only)…"):
    from dashboard.home.page import render_home  # noqa: E402  (imported under the spinner, on purpose)
    from dashboard.shared.threads import leave_cores_for_the_browser  # noqa: E402
    leave_cores_for_the_browser()

PAGES = [
    st.Page(render_home, title="Home", icon="🏠", default=True),
    st.Page(ROOT / "pages" / "dataset.py", title="Dataset", icon="🗂️"),
    st.Page(ROOT / "pages" / "train.py", title="Train", icon="🏋️"),
    st.Page(ROOT / "pages" / "compare.py", title="Compare", icon="📊"),
    st.Page(ROOT / "pages" / "predict.py", title="Predict", icon="🖼️"),
    st.Page(ROOT / "pages" / "live.py", title="Live", icon="🎥"),
]
st.navigation(PAGES).run()

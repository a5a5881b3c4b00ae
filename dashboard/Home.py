"""Entry point: `streamlit run dashboard/Home.py`. One page per script in the top-level pages/ folder."""
from pathlib import Path

import streamlit as st

from dashboard.overview import render_home
from dashboard.threads import leave_cores_for_the_browser

ROOT = Path(__file__).resolve().parents[1]
leave_cores_for_the_browser()

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

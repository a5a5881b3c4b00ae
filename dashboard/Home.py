"""Entry point: `streamlit run dashboard/Home.py`. One page per script in the top-level pages/ folder."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # streamlit puts dashboard/ on sys.path, not the project
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.overview import render_home  # noqa: E402

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

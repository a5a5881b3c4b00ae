"""Links between pages that also work when a page script runs on its own (AppTest, a single page)."""
import streamlit as st
from streamlit.errors import StreamlitAPIException

from fer_core.paths import PROJECT_ROOT


def page_link(page: str, label: str, icon: str | None = None, container=st) -> None:
    """A link to pages/<page>.py; plain text naming the page where navigation does not know it."""
    try:
        container.page_link(str(PROJECT_ROOT / "pages" / f"{page}.py"), label=label, icon=icon)
    except StreamlitAPIException:
        container.caption(f"{label}: open **{page.capitalize()}** in the sidebar.")

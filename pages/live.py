"""Live: the browser's webcam through streamlit-webrtc, annotated with each face's emotion.

A thin script: the page lives in its room, dashboard/live/ (docs/architecture.md).
"""
from dashboard.live.page import render

render()

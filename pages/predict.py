"""Predict: the emotion of every face in uploaded photos and videos, with downloads of the results.

A thin script: the page lives in its room, dashboard/predict/ (docs/architecture.md).
"""
from dashboard.predict.page import render

render()

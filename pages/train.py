"""Train: launch training jobs, watch them live, cancel, resume, delete; hyperparameter studies.

A thin script: the page lives in its room, dashboard/train/ (docs/architecture.md).
"""
from dashboard.train.page import render

render()

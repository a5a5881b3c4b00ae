"""Dataset: class counts and imbalance, balancing weights, samples, mean faces, intensities, data health.

A thin script: the page lives in its room, dashboard/dataset/ (docs/architecture.md).
"""
from dashboard.dataset.page import render

render()

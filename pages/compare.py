"""Compare: every run and reference model in one table; 2 to 4 side by side; ensembles of them.

A thin script: the page lives in its room, dashboard/compare/ (docs/architecture.md).
"""
from dashboard.compare.page import render

render()

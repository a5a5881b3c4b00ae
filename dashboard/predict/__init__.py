"""Predict: photos and videos, with heat maps and downloads."""

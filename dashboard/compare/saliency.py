"""Saliency heat maps as Compare shows them: dataset faces under their Grad-CAM maps, and each class's mean."""
from __future__ import annotations

import cv2
import numpy as np
import streamlit as st

from dashboard.shared import model_cache
from fer_core.evaluation import class_mean_maps, saliency_maps
from fer_core.inference import saliency_overlay
from fer_core.models import file_identity, load_model

TILE = 96  # pixels per face tile


def face_tiles(faces: np.ndarray, maps: np.ndarray, side: int = TILE) -> list[np.ndarray]:
    """48x48 grey faces, enlarged to `side`, each under its map (RGB uint8)."""
    tiles = []
    for face, saliency in zip(faces, maps):
        rgb = cv2.cvtColor(cv2.resize(np.asarray(face, np.uint8), (side, side), interpolation=cv2.INTER_LINEAR),
                           cv2.COLOR_GRAY2RGB)
        tiles.append(saliency_overlay(rgb, saliency))
    return tiles


@st.cache_data(max_entries=32, show_spinner="Computing the heat maps…")
def cell_maps(checkpoint: str, identity: str, faces: np.ndarray, target: int, views: int) -> np.ndarray:
    """Maps of `faces` for class `target`; `identity` (the model files' version) keys the cache."""
    return saliency_maps(model_cache.network(checkpoint), faces, [target] * len(faces), views)


def cell_heat_maps(checkpoint: str, faces: np.ndarray, target: int, views: int) -> list[np.ndarray]:
    return face_tiles(faces, cell_maps(checkpoint, file_identity(checkpoint), faces, target, views))


def class_means(checkpoint: str, faces: np.ndarray, labels: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(mean maps, mean faces), each (7, 48, 48): per class, over the faces labelled with it, each mean map scaled
    to its own maximum (an average of maps is flatter than any one of them). Runs on the Compare page's worker
    thread, so it loads the network itself instead of through Streamlit's cache."""
    maps = class_mean_maps(load_model(checkpoint), faces, labels, progress=progress)
    maps = maps / np.maximum(maps.reshape(len(maps), -1).max(1), 1e-12)[:, None, None]
    mean_faces = np.stack([faces[labels == k].mean(0) if (labels == k).any() else np.zeros(faces.shape[1:])
                           for k in range(len(maps))]).round().astype(np.uint8)
    return maps, mean_faces

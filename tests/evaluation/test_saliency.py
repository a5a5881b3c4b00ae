"""Saliency maps (Grad-CAM through Captum): shapes for networks, ensembles, crops and TTA; the recognizer's
explain option; the model-randomisation sanity check of Adebayo et al. (2018)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_core.evaluation.saliency import SaliencyUnavailable, class_mean_maps, saliency_maps
from fer_core.labels import EMOTIONS
from fer_core.models.ensemble import EnsembleModel
from fer_core.models.loading import load_model
from fer_core.models.registry import create_model

DEFAULT = Path(__file__).resolve().parents[2] / "models" / "default.pt"


def synthetic_faces(n: int = 8, seed: int = 0) -> np.ndarray:
    """Cartoon faces: an oval, two eyes, a mouth whose curve and the eyes' size vary, on a noisy background."""
    rng = np.random.default_rng(seed)
    faces = []
    for _ in range(n):
        img = rng.normal(90, 12, (48, 48)).clip(0, 255).astype(np.uint8)
        cx, cy = 24 + rng.integers(-2, 3), 24 + rng.integers(-2, 3)
        cv2.ellipse(img, (int(cx), int(cy)), (17, 21), 0, 0, 360, int(rng.integers(150, 200)), -1)
        eye = int(rng.integers(2, 4))
        for dx in (-7, 7):
            cv2.circle(img, (int(cx + dx), int(cy - 6)), eye, 30, -1)
        smile = int(rng.integers(-5, 6))
        cv2.ellipse(img, (int(cx), int(cy + 9)), (8, abs(smile) + 1), 0, 0 if smile >= 0 else 180,
                    180 if smile >= 0 else 360, 40, 2)
        faces.append(img)
    return np.stack(faces)


def test_maps_have_the_faces_shape_and_lie_in_0_1():
    torch.manual_seed(0)
    faces = synthetic_faces(5)
    for model in (create_model("fer_vgg_small").eval(), create_model("fer_vgg_small", crop=44).eval(),
                  EnsembleModel([create_model("fer_vgg_small"), create_model("seed_cnn")]).eval()):
        for views in (1, 3, 10):
            maps = saliency_maps(model, faces, [0, 1, 2, 3, 4], views)
            assert maps.shape == (5, 48, 48) and maps.dtype == np.float32
            assert maps.min() >= 0 and maps.max() <= 1
    assert saliency_maps(create_model("fer_vgg_small").eval(), faces[:0], []).shape == (0, 48, 48)


def test_a_crop_network_is_explained_inside_its_window_only():
    torch.manual_seed(0)
    maps = saliency_maps(create_model("fer_vgg_small", crop=40).eval(), synthetic_faces(4), [3] * 4)
    assert maps[:, :4].max() == 0 and maps[:, -4:].max() == 0 and maps[:, :, :4].max() == 0
    assert maps[:, 4:44, 4:44].max() > 0


def test_tta_maps_are_mapped_back_onto_the_face():
    """Each TTA view's map is put back where that view took its pixels from: maps that are exactly the views of
    one map M (mirrored, shifted) all come back as M, away from the edges a shift pads."""
    from fer_core.evaluation.saliency import _view_back
    from fer_core.evaluation.tta import MAX_SHIFT, MAX_VIEWS, make_views
    m = torch.rand(3, 48, 48)
    back = _view_back(make_views(m.unsqueeze(1), MAX_VIEWS)[:, 0], MAX_VIEWS)
    inner = (slice(None), slice(None), slice(MAX_SHIFT, -MAX_SHIFT), slice(MAX_SHIFT, -MAX_SHIFT))
    torch.testing.assert_close(back[inner], m.expand(MAX_VIEWS, -1, -1, -1)[inner])


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr
    return float(np.nanmean([spearmanr(x.ravel(), y.ravel()).statistic for x, y in zip(a, b)]))  # all-zero maps: nan


def test_maps_of_the_trained_default_differ_from_those_of_randomised_weights():
    """Adebayo et al. (2018): a saliency method that shows the same maps after the weights are randomised says
    nothing about the model. Grad-CAM on the shipped default must change, while a copy of the same weights
    (stored in float16, run in float32) must not: the measure can tell the two cases apart."""
    trained = load_model(DEFAULT)
    faces = synthetic_faces(12)
    targets = [EMOTIONS.index("happy")] * 6 + [EMOTIONS.index("sad")] * 6
    maps = saliency_maps(trained, faces, targets)
    same = saliency_maps(load_model(DEFAULT).half().float(), faces, targets)
    assert _rank_correlation(maps, same) > 0.95
    for seed in (0, 1):
        torch.manual_seed(seed)
        randomised = create_model("fer_vgg_small").eval()
        assert _rank_correlation(maps, saliency_maps(randomised, faces, targets)) < 0.5, seed
    # cascading randomisation of the classifier head only (the top layers first, as in the paper)
    head = load_model(DEFAULT)
    torch.manual_seed(2)
    for layer in head.classifier:
        if hasattr(layer, "reset_parameters"):
            layer.reset_parameters()
    assert _rank_correlation(maps, saliency_maps(head, faces, targets)) < 0.5


def test_class_mean_maps_average_each_class_over_its_faces():
    torch.manual_seed(0)
    net = create_model("fer_vgg_small").eval()
    faces, labels = synthetic_faces(6), np.array([0, 0, 3, 3, 3, 6])
    means = class_mean_maps(net, faces, labels)
    assert means.shape == (7, 48, 48)
    np.testing.assert_allclose(means[3], saliency_maps(net, faces[2:5], [3, 3, 3]).mean(0), atol=1e-5)
    assert not means[1].any()  # no disgust face


def test_recognizer_explains_each_face_at_its_crop_size(tmp_path):
    from fer_core.inference.framing import crop_region
    from fer_core.inference.recognizer import EmotionRecognizer
    rec = EmotionRecognizer.load(DEFAULT, engine="torch")
    face = cv2.cvtColor(cv2.resize(synthetic_faces(1)[0], (160, 160)), cv2.COLOR_GRAY2RGB)
    (result,) = rec.predict(face, detect=False, explain=True)
    assert list(result.saliency) == [result.label]
    assert result.saliency[result.label].shape == (crop_region(result.box, face.shape)[2],) * 2 == (160, 160)
    (result,) = rec.predict(face, detect=False, tta=False, explain=["sad", "happy"])
    assert set(result.saliency) == {"sad", "happy"}
    assert not rec.predict(face, detect=False)[0].saliency  # only on request
    with pytest.raises(ValueError, match="unknown emotion"):
        rec.predict(face, detect=False, explain="bored")


def test_an_onnx_model_says_saliency_needs_the_checkpoint(tmp_path):
    from fer_core.inference.recognizer import EmotionRecognizer
    from fer_core.models.loading import export_onnx
    onnx = export_onnx(DEFAULT, tmp_path / "default.onnx")
    rec = EmotionRecognizer.load(onnx)
    face = cv2.cvtColor(synthetic_faces(1)[0], cv2.COLOR_GRAY2RGB)
    assert rec.predict(face, detect=False)[0].label in EMOTIONS  # predicting still works
    with pytest.raises(SaliencyUnavailable, match="PyTorch checkpoint"):
        rec.predict(face, detect=False, explain=True)
    # the same checkpoint run by ONNX Runtime is explained through its PyTorch network
    rec = EmotionRecognizer.load(DEFAULT, engine="onnxruntime")
    assert rec.predict(face, detect=False, explain=True)[0].saliency

"""One cache of loaded models for every page, keyed by the files' identity: a re-shipped model reloads
(on Live it never did: that page cached by path alone)."""
from __future__ import annotations

import ast

import torch

from fer_core.labels import EMOTIONS
from fer_core.models.checkpoints import save_checkpoint
from fer_core.models.registry import create_model
from tests.conftest import REPO


def ship(path, seed: int) -> None:
    torch.manual_seed(seed)
    model = create_model("fer_vgg_small")
    save_checkpoint(path, {"arch": "fer_vgg_small", "model_config": {}, "labels": list(EMOTIONS),
                           "state_dict": {k: v.half() if v.is_floating_point() else v
                                          for k, v in model.state_dict().items()},
                           "epoch": 0, "val_accuracy": 0.0, "train_config": {}})


def first_weight(recognizer) -> torch.Tensor:
    return next(recognizer.model.parameters()).detach().clone()


def test_a_reshipped_model_is_reloaded_and_an_unchanged_one_is_not(tmp_path):
    from dashboard.shared import model_cache
    path = tmp_path / "default.pt"
    ship(path, 0)
    first = model_cache.recognizer(path)
    assert model_cache.recognizer(path) is first
    ship(path, 1)  # replaced in place, as `ship --name default` does
    second = model_cache.recognizer(path)
    assert second is not first and not torch.equal(first_weight(first), first_weight(second))


def test_live_reloads_a_reshipped_model_through_the_same_cache(tmp_path):
    from dashboard.shared import model_cache
    path = tmp_path / "default.pt"
    ship(path, 0)
    first = model_cache.recognizer(path, onnxruntime_threads=1)  # what Live asks for
    ship(path, 1)
    assert model_cache.recognizer(path, onnxruntime_threads=1) is not first


def test_pages_load_models_only_through_the_cache():
    """No page keeps a model cache of its own (Live's, keyed by path alone, never saw a re-shipped model)."""
    for page in (REPO / "pages").glob("*.py"):
        for node in ast.walk(ast.parse(page.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == \
                    "EmotionRecognizer":
                raise AssertionError(f"{page.name}:{node.lineno} loads a model outside dashboard.shared.model_cache")

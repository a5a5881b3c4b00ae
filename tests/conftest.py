"""Shared fixtures: tiny synthetic FER2013 datasets in each supported format, and a tiny checkpoint.

Synthetic images carry their class as a brightness pattern so a model can learn them in an epoch.
"""
from __future__ import annotations

import inspect
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_core.labels import EMOTIONS

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
def find_fer2013() -> Path | None:
    """The real dataset where users give it: $FER_DATA, then data/ in the project, then ../shared/data/."""
    from fer_core.data.sources import resolve_data_path
    from fer_core.errors import DataError
    for candidate in (os.environ.get("FER_DATA"), REPO / "data", SHARED / "data" / "fer2013.zip"):
        if candidate:
            try:
                return resolve_data_path(candidate)
            except DataError:
                continue
    return None


FER2013 = find_fer2013()
YUNET_ONNX = SHARED / "models" / "face_detection_yunet.onnx"
KAGGLE_FOLDERS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")  # alphabetical, as Kaggle

requires_fer2013 = pytest.mark.skipif(
    FER2013 is None, reason="FER2013 not found: set FER_DATA, put Kaggle's archive.zip in data/, or have "
                            "../shared/data/fer2013.zip (integration tests need the real dataset)")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session decodes into its own cache, never the user's ~/.cache."""
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "fer-cache"))
    # `auto` times the engines on a model's first use (an export, a quantization); tests/inference/test_engines.py does
    # that on purpose, every other test runs PyTorch as before
    monkeypatch.setenv("FER_ENGINE", "torch")


def face(label: int, seed: int) -> np.ndarray:
    """A 48x48 uint8 image whose class is visible: a bright band at a class-specific row."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 60, (48, 48), dtype=np.uint8)
    img[label * 6:label * 6 + 6, :] = 220
    return img


def encode(img: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def kaggle_entries(per_class=(6, 3, 3), prefixes=True):
    """(relative path, image bytes, label) for train/ and test/ in the Kaggle layout."""
    n_train, n_public, n_private = per_class
    entries, seed = [], 0
    for folder in KAGGLE_FOLDERS:
        label = EMOTIONS.index(folder)
        for split_dir, usage, count in (("train", "Training", n_train), ("test", "PublicTest", n_public),
                                        ("test", "PrivateTest", n_private)):
            for _ in range(count):
                seed += 1
                name = f"{usage}_{seed}.jpg" if prefixes else f"im{seed}.jpg"
                entries.append((f"{split_dir}/{folder}/{name}", encode(face(label, seed)), label))
    return entries


@pytest.fixture
def make_kaggle_zip(tmp_path):
    def make(name="archive.zip", extra=(), **kw) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for rel, data, _ in [*kaggle_entries(**kw), *extra]:
                zf.writestr(rel, data)
        return path
    return make


@pytest.fixture
def make_kaggle_folder(tmp_path):
    def make(name="fer2013", extra=(), **kw) -> Path:
        root = tmp_path / name
        for rel, data, _ in [*kaggle_entries(**kw), *extra]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root
    return make


@pytest.fixture
def make_fer_csv(tmp_path):
    def make(name="fer2013.csv", per_usage=4, bad_rows=()) -> Path:
        lines, seed = ["emotion,pixels,Usage"], 0
        for usage in ("Training", "PublicTest", "PrivateTest"):
            for label in range(7):
                for _ in range(per_usage):
                    seed += 1
                    lines.append(f"{label},{' '.join(map(str, face(label, seed).ravel()))},{usage}")
        lines.extend(bad_rows)
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n")
        return path
    return make


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """An untrained fer_vgg_small checkpoint in the shipped format (weights in half precision)."""
    import torch

    from fer_core.models.checkpoints import save_checkpoint
    from fer_core.models.registry import create_model
    torch.manual_seed(0)
    model = create_model("fer_vgg_small")
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, {"arch": "fer_vgg_small", "model_config": {}, "labels": list(EMOTIONS),
                           "state_dict": {k: v.half() if v.is_floating_point() else v
                                          for k, v in model.state_dict().items()},
                           "epoch": 0, "val_accuracy": 0.0, "train_config": {}})
    return path


@pytest.fixture(scope="session")
def real_dataset():
    if FER2013 is None:
        pytest.skip("FER2013 not found: set FER_DATA, put it in data/, or have ../shared/data/fer2013.zip")
    from fer_core.data.fer2013 import load_dataset
    return load_dataset(FER2013, cache_dir=Path(os.environ.get("FER_TEST_CACHE", "/tmp/fer-test-cache")))


@pytest.fixture
def dashboard_url(tmp_path):
    """A factory: start the dashboard with extra environment variables, get its URL (stopped after the test)."""
    from .browser_harness import dashboard_server
    servers = []

    def start(**env) -> str:
        env = {"FER_RUNS_DIR": str(tmp_path / "runs"), **{k: str(v) for k, v in env.items()}}
        server = dashboard_server(env)
        servers.append(server)
        return server.__enter__()
    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)


@pytest.fixture
def browser_page():
    """A factory: a chromium page with optional extra command-line flags (e.g. a fake camera)."""
    from .browser_harness import chromium_page
    pages = []

    def open_page(extra_args=()):
        ctx = chromium_page(list(extra_args))
        pages.append(ctx)
        return ctx.__enter__()
    yield open_page
    for ctx in reversed(pages):
        ctx.__exit__(None, None, None)


# ----------------------------------------------------------------------------- Compare's tiny world

@pytest.fixture(scope="session")
def compare_world(tmp_path_factory):
    """runs/: two finished one-epoch runs (different archs) and one with a damaged best.pt;
    models/: a card shipped from the first run (its checkpoint included) and a reference card of the
    second (no checkpoint; its per-image predictions beside it); and the data zip."""
    return _build_world(tmp_path_factory)


def _build_world(tmp_path_factory) -> dict:
    import shutil

    from fer_core.cards.model_cards import ship_card_only, ship_run
    from fer_core.training.config import TrainConfig
    from fer_core.training.train import main
    root = tmp_path_factory.mktemp("compare-world")
    data = root / "archive.zip"
    with zipfile.ZipFile(data, "w") as zf:
        for rel, blob, _ in kaggle_entries():
            zf.writestr(rel, blob)
    runs, models = root / "runs", root / "models"
    made = []
    for arch, name in (("fer_vgg_small", "small-a"), ("elu_cnn", "elu-b")):
        made.append(main(TrainConfig(arch=arch, data=str(data), out=str(runs), name=name, epochs=1,
                                     batch_size=16, tta_views=2, rotate=0, zoom=0, shift=0)))
    damaged = runs / "damaged-c"
    shutil.copytree(made[0], damaged)
    (damaged / "best.pt").write_bytes(b"not a checkpoint")
    ship_run(made[0], "reference-small", models_dir=models, data=str(data))
    ship_card_only(made[1], "reference-elu", models_dir=models, data=str(data))
    return {"root": root, "data": data, "runs": runs, "models": models}


@pytest.fixture
def crash_in_epoch(monkeypatch):
    """crash_in_epoch(n) makes training raise a simulated out-of-memory in epoch n; crash_in_epoch(None) undoes it."""
    from fer_core.training import train as train_module
    real_epoch = train_module.train_one_epoch

    def arm(epoch: int | None) -> None:
        def crashing(*args, **kw):
            if inspect.signature(real_epoch).bind(*args, **kw).arguments["epoch"] == epoch:
                raise MemoryError("simulated out of memory")
            return real_epoch(*args, **kw)
        monkeypatch.setattr(train_module, "train_one_epoch", real_epoch if epoch is None else crashing)
    return arm


def pytest_collection_modifyitems(config, items):
    """Browser and real-dataset tests are slow by nature: the fast lane (`pytest -m "not slow"`) leaves them out."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.slow)

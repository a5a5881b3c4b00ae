"""The architecture registry, pretrained-weight loading, augmentation, balancing and TTA."""
import urllib.error

import numpy as np
import pytest
import torch

from fer_core.errors import PretrainedWeightsError
from fer_core.evaluation import tta
from fer_core.models import registry as models
from fer_core.models.registry import create_model, list_models
from fer_core.training.augment import AugmentConfig, augment_batch
from fer_core.training.balance import class_weights, epoch_indices

EXPECTED = {"seed_cnn", "elu_cnn", "vgg16", "inception_v3", "resnet18", "fer_vgg", "fer_vgg_small"}


def test_registry_has_every_architecture_of_the_seeds():
    assert EXPECTED <= set(list_models())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_model_maps_48x48_grayscale_to_7_logits(name):
    model = create_model(name).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 1, 48, 48) * 2 - 1)
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_unknown_architecture():
    with pytest.raises(KeyError, match="unknown architecture 'resnet999'"):
        create_model("resnet999")


def test_imagenet_weights_offline_say_where_to_put_the_file(monkeypatch, tmp_path):
    import torchvision.models as tvm

    def offline(self, *a, **kw):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PretrainedWeightsError) as err:
        create_model("resnet18", pretrained="imagenet")
    message = str(err.value)
    assert "https://download.pytorch.org/models/resnet18" in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message


def test_local_state_dict_loads_into_the_backbone(tmp_path):
    from torchvision.models import resnet18
    torch.manual_seed(1)
    source = resnet18(weights=None)  # an "ImageNet" file: 1000-class head, as users download it
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = create_model("resnet18", pretrained=str(path))
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert model.backbone.fc.out_features == 7  # the head keeps its own shape


def test_pretrained_path_errors(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="not found"):
        create_model("vgg16", pretrained=str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a state dict")
    with pytest.raises(PretrainedWeightsError, match="not a readable"):
        create_model("vgg16", pretrained=str(bad))
    with pytest.raises(PretrainedWeightsError, match="trains from scratch"):
        create_model("seed_cnn", pretrained="imagenet")


# ----------------------------------------------------------------------------- augmentation

def test_augmentation_is_batched_deterministic_and_keeps_shape():
    x = torch.rand(16, 1, 48, 48) * 2 - 1
    cfg = AugmentConfig(flip=True, rotate=15, zoom=0.1, shift=0.1, erase=0.5)
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)
    assert a.min() >= -1.0001 and a.max() <= 1.0001


def test_flip_only_mirrors_about_half_the_batch():
    x = torch.rand(200, 1, 48, 48)
    out = augment_batch(x, AugmentConfig(flip=True, rotate=0, zoom=0, shift=0), torch.Generator().manual_seed(0))
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x)]
    kept = [torch.equal(o, i) for o, i in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 60 < sum(flipped) < 140


def test_random_erasing_blanks_a_rectangle():
    x = torch.ones(8, 1, 48, 48)
    out = augment_batch(x, AugmentConfig(flip=False, rotate=0, zoom=0, shift=0, erase=1.0), torch.Generator().manual_seed(0))
    erased = (out == 0).flatten(1).sum(1)
    assert (erased > 0).all() and (erased < 48 * 48 * 0.3).all()


def test_random_crop_cuts_a_whole_pixel_window_of_each_image():
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 1, 48, 48).repeat(16, 1, 1, 1)
    out = augment_batch(x, AugmentConfig(flip=False, rotate=0, zoom=0, shift=0, crop=40), torch.Generator().manual_seed(0))
    assert out.shape == (16, 1, 40, 40)
    tops, lefts = (out[:, 0, 0, 0] // 48).long(), (out[:, 0, 0, 0] % 48).long()
    for img, top, left in zip(out, tops, lefts):
        assert torch.equal(img[0], x[0, 0, top:top + 40, left:left + 40])
    assert tops.max() <= 8 and lefts.max() <= 8 and len(set(tops.tolist())) > 1  # offsets vary within 0..8


def test_degradation_softens_relights_or_adds_noise_to_the_chosen_faces_only():
    from fer_core.training.augment import degrade
    torch.manual_seed(0)
    x = (torch.rand(400, 1, 48, 48) * 2 - 1)
    none = AugmentConfig(flip=False, rotate=0, zoom=0, shift=0)
    assert torch.equal(augment_batch(x, none), x)  # off by default
    out = degrade(x, 1.0, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    assert torch.equal(out, degrade(x, 1.0, torch.Generator().manual_seed(1)))  # the generator decides
    changed = (out != x).flatten(1).any(1)
    assert 0.8 < changed.float().mean() < 0.95  # three draws of 1/2 each: 1/8 of the faces keep all
    # softening: a checkerboard loses most of its pixel-to-pixel contrast once shrunk and enlarged back
    board = ((torch.arange(48).view(1, 48) + torch.arange(48).view(48, 1)) % 2).float().mul(2).sub(1)
    soft = degrade(board.expand(400, 1, 48, 48), 1.0, torch.Generator().manual_seed(2))
    step = (soft[..., 1:] - soft[..., :-1]).abs().mean(dim=(1, 2, 3))
    assert (step < 0.5).float().mean() > 0.4
    half = degrade(x, 0.5, torch.Generator().manual_seed(3))
    assert 0.3 < (half != x).flatten(1).any(1).float().mean() < 0.6


@pytest.mark.parametrize("name", ["fer_vgg_small", "seed_cnn", "elu_cnn", "resnet18"])
def test_a_crop_model_takes_whole_faces_and_looks_at_their_centre(name):
    model = create_model(name, crop=40).eval()
    faces = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        assert model(faces).shape == (2, 7)
        assert torch.allclose(model(faces), model(faces[..., 4:44, 4:44]))  # the centre 40x40 window


# ----------------------------------------------------------------------------- class balancing

COUNTS = np.array([400, 40, 400, 800, 400, 300, 500])


def test_class_weights_per_method():
    weighted = class_weights(COUNTS, "weighted")
    assert np.allclose(weighted, COUNTS.sum() / (7 * COUNTS))
    assert np.allclose(class_weights(COUNTS, "undersample"), 40 / COUNTS)
    assert np.allclose(class_weights(COUNTS, "oversample") * COUNTS, COUNTS.sum() / 7)
    assert np.allclose(class_weights(COUNTS, "none"), 1)


def test_epoch_indices_balance_the_classes():
    labels = torch.from_numpy(np.repeat(np.arange(7), COUNTS))
    gen = torch.Generator().manual_seed(0)
    plain = epoch_indices(labels, "none", gen)
    assert sorted(plain.tolist()) == list(range(len(labels)))
    under = labels[epoch_indices(labels, "undersample", gen)]
    assert torch.bincount(under).tolist() == [40] * 7
    over = torch.bincount(labels[epoch_indices(labels, "oversample", gen)], minlength=7)
    assert over.sum() == len(labels) and (over > 0.7 * len(labels) / 7).all()


def test_weighted_loss_weights_each_image_by_its_class_and_keeps_smoothing_neutral():
    import torch.nn.functional as F

    from fer_core.training.balance import weighted_cross_entropy
    logits, y = torch.randn(6, 7), torch.tensor([0, 1, 1, 3, 6, 6])
    w = torch.tensor(class_weights(COUNTS, "weighted"), dtype=torch.float32)
    # without smoothing it is PyTorch's weighted cross-entropy
    assert torch.allclose(weighted_cross_entropy(logits, y, w), F.cross_entropy(logits, y, weight=w))
    assert torch.allclose(weighted_cross_entropy(logits, y, None, 0.1), F.cross_entropy(logits, y, label_smoothing=0.1))
    # with smoothing: by hand, image by image
    log_p = logits.log_softmax(1)
    per_image = [-(0.9 * log_p[i, y[i]] + 0.1 * log_p[i].mean()) for i in range(6)]
    expected = sum(w[y[i]] * per_image[i] for i in range(6)) / w[y].sum()
    assert torch.allclose(weighted_cross_entropy(logits, y, w, 0.1), expected)
    # uniform logits are the optimum's starting point: the smoothing must not pull them towards rare classes
    flat = torch.zeros(6, 7, requires_grad=True)
    weighted_cross_entropy(flat, torch.tensor([3] * 6), w, 0.1).backward()
    grad = flat.grad.sum(0)
    assert grad[3] < 0 and torch.allclose(grad[[0, 1, 2, 4, 5, 6]], grad[0].expand(6))  # no favourite rare class


# ----------------------------------------------------------------------------- TTA

def test_views_are_the_image_its_mirror_then_shifts():
    x = torch.arange(48 * 48, dtype=torch.float32).view(1, 1, 48, 48)
    v = tta.make_views(x, 4)
    assert v.shape == (4, 1, 48, 48)
    assert torch.equal(v[0], x[0]) and torch.equal(v[1], x[0].flip(-1))
    assert torch.equal(v[2][..., :, :-1], x[0][..., :, 1:])  # shifted one pixel
    with pytest.raises(ValueError):
        tta.make_views(x, tta.MAX_VIEWS + 1)


class _CountingModel(torch.nn.Module):
    """Logits from the left/right brightness difference; counts forward calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        d = x[..., :24].mean((1, 2, 3)) - x[..., 24:].mean((1, 2, 3))
        return torch.stack([d * k for k in range(7)], 1)


def test_tta_averages_softmax_over_views_in_one_forward_pass():
    x = torch.rand(5, 1, 48, 48)
    model = _CountingModel()
    probs = tta.predict_proba(model, x, views=6)
    assert model.calls == 1
    expected = torch.stack([model(v.unsqueeze(0)).softmax(-1)[0]
                            for i in range(5) for v in tta.make_views(x[i:i + 1], 6)]).view(5, 6, 7).mean(1)
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(5))


def test_normalize_images_maps_pixels_to_minus_one_one():
    x = torch.tensor([0, 255], dtype=torch.uint8)
    assert models.normalize_images(x).tolist() == [-1.0, 1.0]
